// commands.h - ferryctl's commands, written against source (online or offline).
// Each returns the process exit code or throws failure (args.h).
#pragma once

#include <cstdint>
#include <string>

#include "tools/ferryctl/output.h"
#include "tools/ferryctl/source.h"

namespace ferry::ferryctl {

struct common_options {
  format fmt = format::jsonl;
  bool progress = true;  // false: --no-progress
};

struct replay_options {
  std::string topic;
  std::string from = "earliest";
  std::string to;      // "" = no end (follow) / the head at start
  uint64_t limit = 0;  // 0 = no limit
  bool follow = false;
  int64_t poll_ms = 250;
  size_t page_size = 1000;
};

int run_replay(source& src, const common_options& common, const replay_options& o);
int run_topics(source& src, const common_options& common);
int run_consumers(source& src, const common_options& common, const std::string& consumer);
int run_positions(source& src, const common_options& common, const std::string& consumer);
int run_positions_set(source& src, const common_options& common, const std::string& consumer, const std::string& topic,
                      const std::string& to);
int run_dlq_list(source& src, const common_options& common, const std::string& consumer);
int run_dlq_redrive(source& src, const common_options& common, const std::string& consumer, uint64_t limit);

struct publish_options {
  std::string topic, event, id, data;
  bool single = false;  // --data or --id given: publish one event from the flags
  size_t batch_size = 100;
};
int run_publish(source& src, const common_options& common, const publish_options& o);
int run_stats(source& src, const common_options& common);

}  // namespace ferry::ferryctl
