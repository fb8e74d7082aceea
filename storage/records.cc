#include "storage/records.h"

#include <flatbuffers/flatbuffers.h>

namespace ferry::storage {
namespace {

template <class T>
const T* verify(std::string_view bytes) noexcept {
  if (bytes.empty()) return nullptr;
  // FlatBuffers read scalars in place: the buffer must be 8-byte aligned (std::string
  // storage is; RocksDB iterator values are not, so callers copy those first).
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 8 != 0) return nullptr;
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                          /*max_depth=*/64, /*max_tables=*/1000000);
  if (!v.VerifyBuffer<T>(nullptr)) return nullptr;
  return flatbuffers::GetRoot<T>(bytes.data());
}

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace

const schema::Event* verified_event(std::string_view b) noexcept { return verify<schema::Event>(b); }

const schema::Chunk* verified_chunk(std::string_view b) noexcept {
  const schema::Chunk* c = verify<schema::Chunk>(b);
  if (!c || !c->events() || c->events()->size() == 0) return nullptr;
  uint64_t prev = 0;
  for (const auto* e : *c->events()) {
    if (!e || e->seq() <= prev) return nullptr;  // readers binary-search and filter by seq
    prev = e->seq();
  }
  return c;
}
const schema::TopicMeta* verified_topic_meta(std::string_view b) noexcept { return verify<schema::TopicMeta>(b); }
const schema::Dedupe* verified_dedupe(std::string_view b) noexcept { return verify<schema::Dedupe>(b); }
const schema::Position* verified_position(std::string_view b) noexcept { return verify<schema::Position>(b); }
const schema::Checkpoint* verified_checkpoint(std::string_view b) noexcept { return verify<schema::Checkpoint>(b); }
const schema::Session* verified_session(std::string_view b) noexcept { return verify<schema::Session>(b); }

std::string encode(const session_record& s) {
  flatbuffers::FlatBufferBuilder fb(256);
  std::vector<flatbuffers::Offset<schema::Subscription>> subs;
  subs.reserve(s.subscriptions.size());
  for (const auto& sub : s.subscriptions) {
    auto topic = fb.CreateString(sub.topic);
    auto consumer = fb.CreateString(sub.consumer);
    subs.push_back(schema::CreateSubscription(fb, topic, consumer, static_cast<schema::DeliveryMode>(sub.mode),
                                              sub.from_seq, sub.history_end, sub.position));
  }
  auto pid = fb.CreateString(s.pid);
  auto sid = fb.CreateString(s.sid);
  auto nsp = fb.CreateString(s.nsp);
  auto consumer = fb.CreateString(s.consumer);
  auto vec = fb.CreateVector(subs);
  auto phase = fb.CreateString(s.phase_topic);
  fb.Finish(schema::CreateSession(fb, pid, sid, nsp, consumer, vec, s.cursor, s.base, phase, s.phase_marker,
                                  s.expires_ms, s.offsets_enabled));
  return {reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()};
}

result<session_record> decode_session(std::string_view bytes) {
  const schema::Session* s = verified_session(bytes);
  if (!s) return errc::corruption;
  session_record r;
  r.pid = str(s->pid());
  r.sid = str(s->sid());
  r.nsp = str(s->nsp());
  r.consumer = str(s->consumer());
  if (s->subscriptions()) {
    for (const auto* sub : *s->subscriptions()) {
      if (!sub) continue;
      subscription_record x;
      x.topic = str(sub->topic());
      x.consumer = str(sub->consumer());
      x.mode = static_cast<delivery_mode>(sub->mode());
      x.from_seq = sub->from_seq();
      x.history_end = sub->history_end();
      x.position = sub->position();
      r.subscriptions.push_back(std::move(x));
    }
  }
  r.cursor = s->cursor();
  r.base = s->base();
  r.phase_topic = str(s->phase_topic());
  r.phase_marker = s->phase_marker();
  r.expires_ms = s->expires_ms();
  r.offsets_enabled = s->offsets_enabled();
  return r;
}

}  // namespace ferry::storage
