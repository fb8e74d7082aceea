// ferry_codec.h - the broker's reserved events as the client speaks them (DESIGN.md
// section 2). Pure functions over strings; no I/O.
//
//   publish     [{topic, event, data, id}, ...]  ->  {ok:true, offsets:[..], duplicates:[..]}
//                                                    or {ok:false, error:{code, message}}
//   subscribe   {topic, from?, consumer?, mode?}  ->  {ok:true, topic, head, position}
//   unsubscribe {topic} / commit {topic, offset}  ->  {ok:true}
//   delivery    ["<event>", <data>, {topic, id, ts}, "<offset>"]   (offset absent when the
//               namespace has offsets off)
//   $gap        {topic?, from?, first, reason}
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/client/consumer.h"
#include "ferry/client/error.h"
#include "ferry/client/socketio.h"

namespace ferry::client::detail {

// Broker limits mirrored on the client, so that one bad event never poisons a batch (the
// broker rejects a whole batch for one invalid member).
inline constexpr size_t max_topic_bytes = 200;
inline constexpr size_t max_event_name_bytes = 200;
inline constexpr size_t max_id_bytes = 256;

// Checks an event before it is accepted: topic, event name, id, data JSON.
[[nodiscard]] result<void> validate_outgoing(std::string_view topic, std::string_view event, std::string_view id,
                                             std::string_view data_json);

// {"topic":..,"event":..,"data":..,"id":..} (data as given, minified if it has whitespace).
[[nodiscard]] std::string encode_publish_item(std::string_view topic, std::string_view event,
                                              std::string_view data_json, std::string_view id);

struct publish_item_result {
  std::string offset;
  bool duplicate = false;
};

// The reply to a publish batch of `count` events: per-event results, or the broker's
// rejection (ok=false); errc::protocol_error if the reply is not shaped like either.
struct publish_reply {
  bool ok = true;
  std::vector<publish_item_result> items;  // ok: one per event, in order
  std::string code;                        // !ok: the broker's error code
  std::string message;                     // !ok: "<code>: <message>"
};
[[nodiscard]] result<publish_reply> parse_publish_reply(std::string_view first_arg, size_t count);

// Broker error codes worth retrying with the same ids (transient conditions).
[[nodiscard]] bool retriable_publish_error(std::string_view code) noexcept;

[[nodiscard]] std::string encode_subscribe(std::string_view topic, const start_position& from,
                                           std::string_view consumer, delivery_mode mode);
[[nodiscard]] std::string encode_topic_request(std::string_view topic);
[[nodiscard]] std::string encode_commit(std::string_view topic, std::string_view offset);

// {ok:true, ...} -> ok; {ok:false, error:{code,message}} -> rejected "<code>: <message>".
[[nodiscard]] result<void> parse_ok_reply(std::string_view first_arg);
[[nodiscard]] result<subscribe_ack> parse_subscribe_reply(std::string_view first_arg);

// A broker delivery; nullopt if the message is not shaped like one.
[[nodiscard]] std::optional<event> parse_delivery(const sio::message& m);
[[nodiscard]] std::optional<gap_info> parse_gap(const sio::message& m);

// Offsets: "<epoch:8 hex>-<seq:16 hex>". true if a is after b in the same epoch;
// `comparable` is false when the epochs differ (or either does not parse).
[[nodiscard]] bool offset_after(std::string_view a, std::string_view b, bool& comparable) noexcept;

}  // namespace ferry::client::detail
