#include "client/src/outbox.h"

namespace ferry::client::detail {

outbox::push_result outbox::push(outbox_entry e, outbox_policy policy, std::chrono::milliseconds block_timeout,
                                 const std::function<result<void>(outbox_entry&)>& accept) {
  push_result r;
  const size_t need = e.item.size();
  std::unique_lock lock(_mutex);
  if (_closed) {
    r.st = status::closed;
    return r;
  }
  if (need > _max_bytes || _max_events == 0) {
    r.st = status::too_large;
    return r;
  }
  if (!has_room(need)) {
    switch (policy) {
      case outbox_policy::fail:
        r.st = status::full;
        return r;
      case outbox_policy::block:
        if (!_room.wait_for(lock, block_timeout, [&] { return _closed || has_room(need); })) {
          r.st = status::full;
          return r;
        }
        if (_closed) {
          r.st = status::closed;
          return r;
        }
        break;
      case outbox_policy::drop_oldest:
        while (!has_room(need) && !_entries.empty()) r.dropped.push_back(remove(_entries.begin()));
        break;
    }
  }
  if (accept) {
    if (auto a = accept(e); !a) {
      r.st = status::rejected;
      r.err = a.err();
      return r;
    }
  }
  uint64_t seq = e.seq;
  _bytes += need;
  _queued_bytes += need;
  _queued.insert(seq);
  _entries.emplace(seq, std::move(e));
  return r;
}

void outbox::push_unbounded(outbox_entry e) {
  std::lock_guard lock(_mutex);
  uint64_t seq = e.seq;
  size_t need = e.item.size();
  e.in_flight = false;
  _bytes += need;
  _queued_bytes += need;
  _queued.insert(seq);
  _entries.emplace(seq, std::move(e));
}

outbox::batch outbox::take_batch(size_t max_events, size_t max_bytes) {
  batch b;
  std::lock_guard lock(_mutex);
  size_t bytes = 2;
  b.json.push_back('[');
  while (!_queued.empty()) {
    auto qit = _queued.begin();
    auto it = _entries.find(*qit);
    if (it == _entries.end()) {  // cannot happen: removal keeps both in step
      _queued.erase(qit);
      continue;
    }
    outbox_entry& e = it->second;
    bool first = b.seqs.empty();
    if (!first) {
      if (e.solo || b.seqs.size() >= max_events || bytes + e.item.size() + 1 > max_bytes) break;
      b.json.push_back(',');
    }
    b.json += e.item;
    bytes += e.item.size() + (first ? 0 : 1);
    b.seqs.push_back(e.seq);
    e.in_flight = true;
    ++e.sends;
    _queued_bytes -= e.item.size();
    _queued.erase(qit);
    if (e.solo) break;
  }
  b.json.push_back(']');
  if (b.seqs.empty()) b.json.clear();
  return b;
}

outbox_entry outbox::remove(std::map<uint64_t, outbox_entry>::iterator it) {
  outbox_entry e = std::move(it->second);
  _bytes -= e.item.size();
  if (!e.in_flight) {
    _queued.erase(e.seq);
    _queued_bytes -= e.item.size();
  }
  _entries.erase(it);
  return e;
}

std::optional<outbox_entry> outbox::complete(uint64_t seq) {
  std::optional<outbox_entry> out;
  {
    std::lock_guard lock(_mutex);
    auto it = _entries.find(seq);
    if (it == _entries.end()) return std::nullopt;
    out = remove(it);
  }
  _room.notify_all();
  return out;
}

size_t outbox::requeue(const std::vector<uint64_t>& seqs, bool solo) {
  std::lock_guard lock(_mutex);
  size_t n = 0;
  for (uint64_t seq : seqs) {
    auto it = _entries.find(seq);
    if (it == _entries.end() || !it->second.in_flight) continue;
    it->second.in_flight = false;
    it->second.solo |= solo;
    _queued.insert(seq);
    _queued_bytes += it->second.item.size();
    ++n;
  }
  return n;
}

size_t outbox::requeue_all() {
  std::lock_guard lock(_mutex);
  size_t n = 0;
  for (auto& [seq, e] : _entries) {
    if (!e.in_flight) continue;
    e.in_flight = false;
    _queued.insert(seq);
    _queued_bytes += e.item.size();
    ++n;
  }
  return n;
}

std::vector<outbox_entry> outbox::expire(std::chrono::steady_clock::time_point now) {
  std::vector<outbox_entry> out;
  {
    std::lock_guard lock(_mutex);
    for (auto it = _entries.begin(); it != _entries.end();) {
      if (it->second.deadline <= now) {
        auto next = std::next(it);
        out.push_back(remove(it));
        it = next;
      } else {
        ++it;
      }
    }
  }
  if (!out.empty()) _room.notify_all();
  return out;
}

std::vector<outbox_entry> outbox::close() {
  std::vector<outbox_entry> out;
  {
    std::lock_guard lock(_mutex);
    _closed = true;
    out.reserve(_entries.size());
    for (auto& [seq, e] : _entries) out.push_back(std::move(e));
    _entries.clear();
    _queued.clear();
    _bytes = _queued_bytes = 0;
  }
  _room.notify_all();
  return out;
}

size_t outbox::size() const {
  std::lock_guard lock(_mutex);
  return _entries.size();
}
size_t outbox::bytes() const {
  std::lock_guard lock(_mutex);
  return _bytes;
}
size_t outbox::queued() const {
  std::lock_guard lock(_mutex);
  return _queued.size();
}
size_t outbox::queued_bytes() const {
  std::lock_guard lock(_mutex);
  return _queued_bytes;
}
uint64_t outbox::lowest_seq() const {
  std::lock_guard lock(_mutex);
  return _entries.empty() ? UINT64_MAX : _entries.begin()->first;
}
bool outbox::closed() const {
  std::lock_guard lock(_mutex);
  return _closed;
}

}  // namespace ferry::client::detail
