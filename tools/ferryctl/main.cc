// ferryctl: replay, inspect and reset positions of a Ferry broker, online over its HTTP
// API (--url) or offline from its data directory (--data-dir, read-only, safe while the
// broker runs). tools/ferryctl/README.md documents every command.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "storage/logging.h"
#include "tools/ferryctl/args.h"
#include "tools/ferryctl/commands.h"
#include "tools/ferryctl/interrupt.h"
#include "tools/ferryctl/output.h"
#include "tools/ferryctl/source.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "dev"
#endif

using namespace ferry::ferryctl;

namespace {

constexpr const char* default_url = "http://127.0.0.1:7070";

int fail_line(exit_code code, std::string_view message) {
  fmt::print(stderr, "ferryctl: {}\n", message);
  return static_cast<int>(code);
}

int run(int argc, char** argv) {
  ferry::log::set_level(ferry::log::level::off);  // storage logs only with --verbose

  CLI::App app{"ferryctl " FERRY_VERSION
               ": replay, inspect and reset positions of a Ferry broker.\n"
               "Online (--url, the default) talks to the broker's HTTP API; offline (--data-dir) reads the data\n"
               "directory directly, read-only, and is safe while the broker runs."};
  app.set_version_flag("--version", FERRY_VERSION);
  app.fallthrough();  // global options may also follow the command
  app.footer("Global options (--url, --data-dir, --namespace, --format, --timeout, --no-progress) go before or after\n"
             "the command. tools/ferryctl/README.md has an example of every command.\n\n" +
             std::string(exit_codes_help()));

  std::string url, data_dir, nsp = "/", format_name = "jsonl";
  int64_t timeout_ms = 15000, connect_timeout_ms = 3000;
  bool no_progress = false, verbose = false;
  auto* url_opt =
      app.add_option("--url", url, fmt::format("broker URL, http:// only (online mode; default {})", default_url));
  auto* dir_opt = app.add_option("--data-dir", data_dir, "broker data directory (offline mode, read-only)");
  url_opt->excludes(dir_opt);
  dir_opt->excludes(url_opt);
  app.add_option("-n,--namespace", nsp, "Socket.IO namespace (default /)");
  app.add_option("--format", format_name, "output: jsonl (one JSON object a line, default) or pretty (for humans)")
      ->check(CLI::IsMember({"jsonl", "pretty"}));
  app.add_option("--timeout", timeout_ms, "online: ms to wait for each HTTP response (default 15000)")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--connect-timeout", connect_timeout_ms, "online: ms to wait for the TCP connection (default 3000)")
      ->check(CLI::Range(1, 600000));
  app.add_flag("--no-progress", no_progress, "never draw the progress bar");
  app.add_flag("-v,--verbose", verbose, "log storage messages on stderr (offline mode)");

  // replay / tail
  replay_options replay;
  auto* replay_cmd = app.add_subcommand(
      "replay",
      "Print a topic's events in offset order as JSON lines {offset, topic, event, id, ts, data} (+ attachments as "
      "base64, + dlq).\n"
      "--from: earliest | latest | <offset> (inclusive) | time:<ISO-8601> (e.g. time:2026-11-26T10:00:00Z, "
      "time:2026-11-26T12:00:00.250+02:00) | time:<ms since the epoch>.\n"
      "A time starts at the first event stored at or after it. Without --follow, replay ends at the topic's head as of "
      "the start.");
  replay_cmd->add_option("-t,--topic", replay.topic, "topic")->required();
  replay_cmd->add_option("--from", replay.from, "where to start (default earliest)");
  replay_cmd->add_option("--to", replay.to, "last offset to print (inclusive)");
  replay_cmd->add_option("--limit", replay.limit, "print at most N events")->check(CLI::PositiveNumber);
  replay_cmd->add_flag("-f,--follow", replay.follow,
                       "keep printing new events until SIGINT (Ctrl-C), or --to / --limit");
  replay_cmd->add_option("--poll-interval", replay.poll_ms, "follow: ms between polls when caught up (default 250)")
      ->check(CLI::Range(10, 60000));

  replay_options tail;
  tail.from = "latest";
  tail.follow = true;
  auto* tail_cmd = app.add_subcommand(
      "tail", "Print new events of a topic as they arrive (replay --from latest --follow) until SIGINT.");
  tail_cmd->add_option("-t,--topic", tail.topic, "topic")->required();
  tail_cmd->add_option("--limit", tail.limit, "stop after N events")->check(CLI::PositiveNumber);
  tail_cmd->add_option("--poll-interval", tail.poll_ms, "ms between polls when caught up (default 250)")
      ->check(CLI::Range(10, 60000));

  auto* topics_cmd = app.add_subcommand(
      "topics", "List the namespace's topics: name, head offset, first offset, count, bytes, created.");

  std::string consumers_filter;
  auto* consumers_cmd = app.add_subcommand(
      "consumers", "List named consumers: their topics with position and lag, total lag, active (online).");
  consumers_cmd->add_option("-c,--consumer", consumers_filter, "only this consumer");

  std::string positions_filter;
  auto* positions_cmd = app.add_subcommand(
      "positions",
      "List stored positions per consumer and topic: position, topic head, lag, last update, active (online).");
  positions_cmd->add_option("-c,--consumer", positions_filter, "only this consumer");
  std::string set_consumer, set_topic, set_to;
  auto* set_cmd = positions_cmd->add_subcommand(
      "set",
      "Move a named consumer's position (online only; refused with 409 while that consumer is connected and "
      "subscribed).\n"
      "--to earliest | latest | <offset>: the next delivery is that offset (or the first event after the position).");
  set_cmd->add_option("-c,--consumer", set_consumer, "consumer")->required();
  set_cmd->add_option("-t,--topic", set_topic, "topic")->required();
  set_cmd->add_option("--to", set_to, "earliest | latest | <offset>")->required();
  positions_cmd->require_subcommand(0, 1);

  auto* dlq_cmd = app.add_subcommand("dlq", "Dead-letter topics ($dlq.<consumer>).");
  std::string dlq_consumer, redrive_consumer;
  uint64_t redrive_limit = 0;
  auto* dlq_list_cmd = dlq_cmd->add_subcommand(
      "list",
      "List dead-letter topics with their depth; with --consumer, print that consumer's dead letters as replay lines\n"
      "(with dlq: {topic, offset, reason, deliveries} of the original event).");
  dlq_list_cmd->add_option("-c,--consumer", dlq_consumer, "print the dead letters of this consumer");
  auto* redrive_cmd = dlq_cmd->add_subcommand(
      "redrive", "Republish a consumer's dead letters (not yet redriven) to their original topics (online only).");
  redrive_cmd->add_option("-c,--consumer", redrive_consumer, "consumer")->required();
  redrive_cmd->add_option("--limit", redrive_limit, "at most N events (broker default 1000, max 10000)")
      ->check(CLI::PositiveNumber);
  dlq_cmd->require_subcommand(1);

  publish_options publish;
  auto* publish_cmd =
      app.add_subcommand("publish",
                         "Publish events through POST /v1/publish (online only) and print each offset.\n"
                         "With --data or --id: one event from the flags. Otherwise JSON lines from stdin, each "
                         "{topic?, event?, data?, id?}\n"
                         "(--topic and --event are the defaults), sent in batches.");
  publish_cmd->add_option("-t,--topic", publish.topic, "topic (default for stdin lines)");
  publish_cmd->add_option("-e,--event", publish.event, "event name (broker default: message)");
  auto* id_opt = publish_cmd->add_option("--id", publish.id, "producer id (deduplicated by the broker)");
  auto* data_opt =
      publish_cmd->add_option("-d,--data", publish.data, "event data as JSON text, e.g. '{\"x\":1}' or '\"text\"'");
  publish_cmd->add_option("--batch", publish.batch_size, "stdin: events per request (default 100, max 1000)")
      ->check(CLI::Range(1, 1000));

  auto* stats_cmd = app.add_subcommand(
      "stats", "Broker statistics (online: GET /v1/stats; offline: namespaces, heads, topics, events, bytes).");

  app.require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string what = e.what();
    if (what.empty()) what = e.get_name();
    return fail_line(exit_code::usage, fmt::format("{} (run ferryctl --help)", what));
  }
  if (verbose) ferry::log::set_level(ferry::log::level::info);
  publish.single = data_opt->count() > 0 || id_opt->count() > 0;

  common_options common;
  common.fmt = format_name == "pretty" ? format::pretty : format::jsonl;
  common.progress = !no_progress;
  const bool offline = !data_dir.empty();

  // Arguments are checked before anything is opened or contacted: a usage error is
  // exit 1 whatever the state of the broker or the data directory.
  std::string why;
  const replay_options* replay_opts = replay_cmd->parsed() ? &replay : tail_cmd->parsed() ? &tail : nullptr;
  if (replay_opts) {
    if (!parse_from(replay_opts->from, why)) return fail_line(exit_code::usage, why);
    if (!replay_opts->to.empty() && !parse_offset_arg(replay_opts->to, why))
      return fail_line(exit_code::usage, "bad --to: " + why);
  }
  if (set_cmd->parsed() && !valid_position_target(set_to, why)) return fail_line(exit_code::usage, why);
  if (publish_cmd->parsed() && publish.single &&
      !publish_object_from_flags(publish.topic, publish.event, publish.id, publish.data, why))
    return fail_line(exit_code::usage, why);
  if (nsp.empty() || nsp.front() != '/')
    return fail_line(exit_code::usage, fmt::format("bad --namespace '{}': it starts with /", nsp));
  if (offline) {
    const char* write_cmd = set_cmd->parsed()       ? "positions set"
                            : redrive_cmd->parsed() ? "dlq redrive"
                            : publish_cmd->parsed() ? "publish"
                                                    : nullptr;
    if (write_cmd) {
      return fail_line(
          exit_code::usage,
          fmt::format("{} changes the broker's state and needs --url; offline mode (--data-dir) is read-only",
                      write_cmd));
    }
  }

  try {
    std::unique_ptr<source> src;
    if (offline) {
      src = open_offline(data_dir, nsp);
    } else {
      online_options o;
      o.url = url.empty() ? default_url : url;
      o.timeout_ms = timeout_ms;
      o.connect_timeout_ms = connect_timeout_ms;
      src = open_online(o, nsp);
    }
    if (replay_opts) return run_replay(*src, common, *replay_opts);
    if (topics_cmd->parsed()) return run_topics(*src, common);
    if (consumers_cmd->parsed()) return run_consumers(*src, common, consumers_filter);
    if (set_cmd->parsed()) return run_positions_set(*src, common, set_consumer, set_topic, set_to);
    if (positions_cmd->parsed()) return run_positions(*src, common, positions_filter);
    if (dlq_list_cmd->parsed()) return run_dlq_list(*src, common, dlq_consumer);
    if (redrive_cmd->parsed()) return run_dlq_redrive(*src, common, redrive_consumer, redrive_limit);
    if (publish_cmd->parsed()) return run_publish(*src, common, publish);
    if (stats_cmd->parsed()) return run_stats(*src, common);
    return fail_line(exit_code::usage, "no command (run ferryctl --help)");
  } catch (const failure& f) {
    return fail_line(f.code(), f.what());
  } catch (const output_closed&) {
    return 0;  // the reader went away (e.g. `| head`): not an error
  } catch (const interrupted&) {
    return 130;
  } catch (const std::exception& e) {
    return fail_line(exit_code::usage, fmt::format("unexpected error: {}", e.what()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  install_interrupt_handlers();
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // e.g. a CLI11 construction error: a bug in ferryctl
    return fail_line(exit_code::usage, fmt::format("unexpected error: {}", e.what()));
  }
}
