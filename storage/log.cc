#include "storage/log.h"

#include <sys/random.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <variant>

#include <flatbuffers/flatbuffers.h>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/logging.h"
#include "storage/records.h"

namespace ferry::storage {
namespace {

constexpr ferry::log::logger logger("storage");

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

errc from_status(const rocksdb::Status& s) noexcept {
  if (s.ok()) return errc::ok;
  if (s.IsNotFound()) return errc::not_found;
  if (s.IsCorruption()) return errc::corruption;
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kNoSpace) return errc::no_space;
  if (s.IsInvalidArgument()) return errc::invalid_argument;
  return errc::io_error;
}

std::string u64_value(uint64_t v) {
  std::string s;
  keys::put_u64(s, v);
  return s;
}

// --- fault injection ---------------------------------------------------------------

rocksdb::IOStatus injected(fault_injector::kind k) {
  if (k == fault_injector::kind::no_space) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
  // A transient error: RocksDB makes a non-retryable WAL write error fatal (only a
  // reopen clears it), so an injected fault that can clear must be retryable.
  auto s = rocksdb::IOStatus::IOError("injected: I/O error");
  s.SetRetryable(true);
  return s;
}

class faulty_file final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  faulty_file(std::unique_ptr<rocksdb::FSWritableFile>&& f, std::shared_ptr<fault_injector> faults)
      : FSWritableFileOwnerWrapper(std::move(f)), _faults(std::move(faults)) {}
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    if (auto k = _faults->current(); k != fault_injector::kind::none) return injected(k);
    return FSWritableFileOwnerWrapper::Append(data, o, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
    if (auto k = _faults->current(); k != fault_injector::kind::none) return injected(k);
    return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (auto k = _faults->current(); k != fault_injector::kind::none) return injected(k);
    return FSWritableFileOwnerWrapper::Sync(o, dbg);
  }

 private:
  std::shared_ptr<fault_injector> _faults;
};

class faulty_fs final : public rocksdb::FileSystemWrapper {
 public:
  faulty_fs(const std::shared_ptr<rocksdb::FileSystem>& target, std::shared_ptr<fault_injector> faults)
      : FileSystemWrapper(target), _faults(std::move(faults)) {}
  const char* Name() const override { return "FerryFaultInjectionFS"; }
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& fo,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, rocksdb::IODebugContext* dbg) override {
    if (auto k = _faults->current(); k != fault_injector::kind::none) return injected(k);
    std::unique_ptr<rocksdb::FSWritableFile> inner;
    auto s = target()->NewWritableFile(f, fo, &inner, dbg);
    if (s.ok()) *r = std::make_unique<faulty_file>(std::move(inner), _faults);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& fo,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> inner;
    auto s = target()->ReopenWritableFile(f, fo, &inner, dbg);
    if (s.ok()) *r = std::make_unique<faulty_file>(std::move(inner), _faults);
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& fo,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    if (auto k = _faults->current(); k != fault_injector::kind::none) return injected(k);
    std::unique_ptr<rocksdb::FSWritableFile> inner;
    auto s = target()->ReuseWritableFile(f, old, fo, &inner, dbg);
    if (s.ok()) *r = std::make_unique<faulty_file>(std::move(inner), _faults);
    return s;
  }
  // A full disk has no free space. RocksDB's SstFileManager polls this before it
  // resumes after a NoSpace error; seeing the real free space it would resume at once,
  // fail to create the new WAL, and turn the error fatal.
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o, uint64_t* free,
                                 rocksdb::IODebugContext* dbg) override {
    if (_faults->current() == fault_injector::kind::no_space) {
      *free = 0;
      return rocksdb::IOStatus::OK();
    }
    return FileSystemWrapper::GetFreeSpace(path, o, free, dbg);
  }

 private:
  std::shared_ptr<fault_injector> _faults;
};

// --- expiry without scans: compaction filters ------------------------------------

class dedupe_expiry final : public rocksdb::CompactionFilter {
 public:
  const char* Name() const override { return "FerryDedupeExpiry"; }
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
    std::string copy(value.data(), value.size());  // FlatBuffers want aligned bytes
    const schema::Dedupe* d = verified_dedupe(copy);
    return !d || d->expires_ms() < now_ms();  // true = drop
  }
};

class session_expiry final : public rocksdb::CompactionFilter {
 public:
  const char* Name() const override { return "FerrySessionExpiry"; }
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
    std::string copy(value.data(), value.size());
    const schema::Session* s = verified_session(copy);
    return !s || s->expires_ms() < now_ms();
  }
};

enum cf_index : size_t { cf_default, cf_events, cf_checkpoints, cf_sessions, cf_positions, cf_dedupe, cf_meta, cf_count };
constexpr const char* cf_names[cf_count] = {"default", "events", "checkpoints", "sessions", "positions", "dedupe", "meta"};

struct topic_state {
  std::string name;
  uint32_t id = 0;
  int64_t created_ms = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct ns_state {
  uint32_t id = 0;
  std::string name;
  uint64_t head = 0;
  uint64_t bytes_total = 0;
  uint64_t low_water = 0;
  int64_t last_ts = 0;
  int64_t last_checkpoint_ms = 0;
  bool meta_due = false;  // (group copies only) this commit persists the namespace's stats
  std::unordered_map<std::string, uint32_t> topic_ids;
  std::vector<topic_state> topics;  // index = id - 1
  namespace_policy policy;
};

std::string encode_topic_meta(const topic_state& t) {
  flatbuffers::FlatBufferBuilder fb(128);
  auto name = fb.CreateString(t.name);
  fb.Finish(schema::CreateTopicMeta(fb, name, t.id, t.created_ms, t.first_seq, t.last_seq, t.count, t.bytes));
  return {reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()};
}

// Write requests queued for the writer thread.
struct op_append {
  uint32_t ns;
  std::vector<event_input> events;
  append_callback done;
};
struct op_put {  // sessions / positions: a put (or delete when `erase`)
  cf_index cf;
  std::string key;
  std::string value;
  bool erase = false;
  write_callback done;
};
struct op_retention {
  uint32_t ns;
  write_callback done;
};
struct op_flush {
  std::promise<errc>* done;
};
using write_op = std::variant<op_append, op_put, op_retention, op_flush>;

}  // namespace

struct log::impl {
  options opts;
  std::string dir;
  uint32_t epoch = 0;
  std::unique_ptr<rocksdb::Env> env;  // owns the fault-injection file system, when used
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  std::string secondary_dir;

  mutable std::shared_mutex state_mu;
  std::unordered_map<uint32_t, std::unique_ptr<ns_state>> namespaces;
  std::unordered_map<std::string, uint32_t> namespace_ids;
  std::mutex create_mu;

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::vector<write_op> queue;
  bool stopping = false;
  std::thread writer;

  std::atomic<int> health{static_cast<int>(errc::ok)};
  std::chrono::steady_clock::time_point last_resume{};
  std::atomic<uint64_t> appended_events{0}, duplicate_events{0}, group_commits{0}, write_errors{0};
  mutable std::atomic<uint64_t> corrupt_records{0};

  ~impl() {
    {
      std::lock_guard lk(queue_mu);
      stopping = true;
    }
    queue_cv.notify_all();
    if (writer.joinable()) writer.join();
    if (opts.inline_commit) {
      *alive = false;  // a scheduled commit must not run on a dead log
      run_inline(completions::posted);  // what is queued is committed, as the writer thread does
    }
    if (db) {
      for (auto* h : cf)
        if (h) (void)db->DestroyColumnFamilyHandle(h);
      cf.clear();
      (void)db->Close();
      db.reset();
    }
    if (!secondary_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(secondary_dir, ec);
    }
  }

  // ---- loading ----------------------------------------------------------------------

  ns_state& ensure_ns(uint32_t id) {
    auto& p = namespaces[id];
    if (!p) {
      p = std::make_unique<ns_state>();
      p->id = id;
    }
    return *p;
  }

  errc load_meta() {
    std::unique_lock lk(state_mu);
    // keep policies across reloads (secondary refresh)
    std::unordered_map<uint32_t, namespace_policy> policies;
    for (auto& [id, ns] : namespaces) policies[id] = ns->policy;
    namespaces.clear();
    namespace_ids.clear();
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[cf_meta]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      std::string_view v(it->value().data(), it->value().size());
      if (k == keys::meta_epoch) {
        epoch = keys::get_u32(v, 0);
      } else if (k[0] == 'n') {
        uint32_t id = keys::get_u32(v, 0);
        auto& ns = ensure_ns(id);
        ns.name = std::string(k.substr(1));
        namespace_ids[ns.name] = id;
      } else if (k[0] == 't' && k.size() == 9) {
        std::string value(v);  // FlatBuffers want aligned bytes; iterator values are not
        const schema::TopicMeta* m = verified_topic_meta(value);
        if (!m) {
          ++corrupt_records;
          logger.error("corrupt topic record in meta; data directory damaged");
          return errc::corruption;
        }
        auto& ns = ensure_ns(keys::get_u32(k, 1));
        topic_state t;
        t.name = m->name() ? m->name()->str() : std::string();
        t.id = m->id();
        t.created_ms = m->created_ms();
        t.first_seq = m->first_seq();
        t.last_seq = m->last_seq();
        t.count = m->count();
        t.bytes = m->bytes();
        if (t.id == 0) return errc::corruption;
        if (ns.topics.size() < t.id) ns.topics.resize(t.id);
        ns.topic_ids[t.name] = t.id;
        ns.topics[t.id - 1] = std::move(t);
      } else if (k.size() == 5 && (k[0] == 'h' || k[0] == 'b' || k[0] == 'l')) {
        auto& ns = ensure_ns(keys::get_u32(k, 1));
        uint64_t value = keys::get_u64(v, 0);
        if (k[0] == 'h') ns.head = value;
        else if (k[0] == 'b') ns.bytes_total = value;
        else ns.low_water = value;
      }
    }
    for (auto& [id, p] : policies)
      if (auto it2 = namespaces.find(id); it2 != namespaces.end()) it2->second->policy = p;
    if (!it->status().ok()) return from_status(it->status());
    return catch_up_meta();
  }

  // Topic and namespace stats are persisted once per checkpoint interval, not with every
  // group commit (each metadata put costs a memtable insert). The chunks written since the
  // last persisted state are the truth: fold them in. Cost: O(chunks of the last interval).
  errc catch_up_meta() {
    std::unique_ptr<rocksdb::Iterator> ev(db->NewIterator(rocksdb::ReadOptions(), cf[cf_events]));
    for (auto& [ns_id, ns] : namespaces) {
      for (auto& t : ns->topics) {
        if (t.id == 0) continue;
        std::string prefix = keys::topic_prefix(ns_id, t.id);
        for (ev->Seek(keys::event(ns_id, t.id, t.last_seq + 1)); ev->Valid() && ev->key().starts_with(prefix);
             ev->Next()) {
          std::string value(ev->value().data(), ev->value().size());
          const schema::Chunk* c = verified_chunk(value);
          if (!c) {
            // Reads of it will report corruption. Keep the log usable and never hand out
            // a seq that may be inside the damaged chunk again.
            ++corrupt_records;
            uint64_t first = keys::event_seq({ev->key().data(), ev->key().size()});
            logger.error("corrupt event chunk at namespace {} topic {} seq {}; data directory damaged", ns->name,
                         t.name, first);
            ns->head = std::max(ns->head, first + opts.max_chunk_events);
            continue;
          }
          const schema::Event* last = c->events()->Get(c->events()->size() - 1);
          if (last->seq() <= t.last_seq) continue;  // (cannot happen: chunks start after it)
          t.last_seq = last->seq();
          t.count = std::max(t.count, last->ordinal());
          t.bytes += value.size();
          ns->bytes_total += value.size();
          ns->head = std::max(ns->head, t.last_seq);
          ns->last_ts = std::max(ns->last_ts, last->ts_ms());
        }
        if (!ev->status().ok()) return from_status(ev->status());
        ns->head = std::max(ns->head, t.last_seq);
      }
    }
    return errc::ok;
  }

  // ---- writer -------------------------------------------------------------------------

  void enqueue(write_op op) {
    {
      std::lock_guard lk(queue_mu);
      if (!stopping && queue.size() < opts.max_pending_writes) {
        queue.push_back(std::move(op));
        if (queue.size() == 1) {
          if (opts.inline_commit) schedule_inline();
          else queue_cv.notify_one();
        }
        return;
      }
    }
    fail(op, stopping ? errc::closed : errc::overloaded);
  }

  // inline_commit: the dispatching thread runs the group at the end of this turn.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  void schedule_inline() {
    opts.dispatch([this, weak = std::weak_ptr<bool>(alive)] {
      if (weak.expired()) return;
      run_inline(completions::direct);
    });
  }
  // Where the completions of an inline commit run: right here (a turn of the event loop),
  // or posted through opts.dispatch like the writer thread's (flush() and close, which may
  // be called after the event loop stopped and the objects the callbacks point to are gone).
  enum class completions : uint8_t { direct, posted };
  completions inline_completions = completions::direct;
  void run_inline(completions where) {
    std::vector<write_op> ops;
    {
      std::lock_guard lk(queue_mu);
      ops.swap(queue);
    }
    if (ops.empty()) return;
    inline_completions = where;
    process(ops);
    inline_completions = completions::direct;
  }

  void fail(write_op& op, errc e) {
    std::visit(
        [&](auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, op_append>) {
            append_result r;
            r.status = e;
            if (o.done) o.done(r, o.events);
          } else if constexpr (std::is_same_v<T, op_flush>) {
            if (o.done) o.done->set_value(e);
          } else {
            if (o.done) o.done(e);
          }
        },
        op);
  }

  void writer_loop() {
    std::vector<write_op> ops;
    for (;;) {
      {
        std::unique_lock lk(queue_mu);
        queue_cv.wait(lk, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        ops.swap(queue);
      }
      process(ops);
      ops.clear();
    }
  }

  // An append request waiting in a group: its events stay here until the completion runs.
  struct pending_append {
    uint32_t ns = 0;
    std::vector<event_input> events;
    append_callback done;
    append_result result;
  };
  // Completions of one group, in request order: an append or another write.
  struct completion {
    std::unique_ptr<pending_append> append;
    write_callback other;
  };
  // An event waiting to be written into its topic's chunk.
  struct chunk_entry {
    uint64_t seq;
    uint64_t ordinal;
    int64_t ts;
    const event_input* ev;
  };
  struct new_id {
    uint64_t seq;
    uint32_t topic_id;
    int64_t expires_ms;
  };
  // A group under construction.
  struct topic_delta {
    uint32_t ns;
    topic_state t;  // the new state
    bool created = false;
  };
  struct group {
    rocksdb::WriteBatch batch;                               // non-append writes, then chunks and meta
    std::unordered_map<uint64_t, topic_delta> topics;        // (ns << 32 | id) -> new state
    std::unordered_map<uint32_t, ns_state> ns;               // copies of touched namespaces (no topics)
    std::unordered_map<std::string, new_id> dedupe;          // producer ids this group stores
    std::map<uint64_t, std::vector<chunk_entry>> chunks;     // (ns << 32 | topic) -> its new events
    std::vector<completion> completions;
    bool has_append = false;
    size_t bytes = 0;         // approximate record bytes (bounds the group)
    uint64_t fresh = 0;       // events this group stores (stats, counted on commit)
    uint64_t duplicates = 0;  // events this group acknowledges as duplicates
  };

  // Looks up (or tentatively creates) the topic `name` of namespace `ns` in group `g`.
  topic_delta* topic_for(group& g, ns_state& gns, const std::string& name, int64_t ts) {
    uint32_t id = 0;
    {
      std::shared_lock lk(state_mu);
      auto& committed = *namespaces.at(gns.id);
      if (auto it = committed.topic_ids.find(name); it != committed.topic_ids.end()) {
        id = it->second;
        uint64_t key = (uint64_t{gns.id} << 32) | id;
        auto d = g.topics.find(key);
        if (d == g.topics.end()) d = g.topics.emplace(key, topic_delta{gns.id, committed.topics[id - 1], false}).first;
        return &d->second;
      }
    }
    if (auto it = gns.topic_ids.find(name); it != gns.topic_ids.end()) {
      return &g.topics.at((uint64_t{gns.id} << 32) | it->second);
    }
    size_t existing;
    {
      std::shared_lock lk(state_mu);
      existing = namespaces.at(gns.id)->topics.size();
    }
    size_t next = existing + gns.topic_ids.size() + 1;
    if (next >= UINT32_MAX) return nullptr;
    id = static_cast<uint32_t>(next);
    gns.topic_ids[name] = id;
    topic_state t;
    t.name = name;
    t.id = id;
    t.created_ms = ts;
    return &g.topics.emplace((uint64_t{gns.id} << 32) | id, topic_delta{gns.id, std::move(t), true}).first->second;
  }

  ns_state& ns_for(group& g, uint32_t id) {
    auto it = g.ns.find(id);
    if (it != g.ns.end()) return it->second;
    std::shared_lock lk(state_mu);
    const ns_state& c = *namespaces.at(id);
    ns_state copy;
    copy.id = c.id;
    copy.name = c.name;
    copy.head = c.head;
    copy.bytes_total = c.bytes_total;
    copy.low_water = c.low_water;
    copy.last_ts = c.last_ts;
    copy.last_checkpoint_ms = c.last_checkpoint_ms;
    copy.policy = c.policy;
    return g.ns.emplace(id, std::move(copy)).first->second;
  }

  static size_t approx_bytes(const event_input& ev) {
    size_t n = 48 + ev.topic.size() + ev.event.size() + ev.id.size() + ev.data.size();
    for (const auto& a : ev.attachments) n += a.size() + 8;
    return n;
  }

  // Adds one append request to the group. Its events get seqs and go to their topics'
  // chunks; nothing touches RocksDB until commit(). A request is all or nothing: if one
  // of its events fails, everything it changed in the group is undone.
  void add_append(group& g, op_append& op) {
    auto pa = std::make_unique<pending_append>();
    pa->ns = op.ns;
    pa->events = std::move(op.events);
    pa->done = std::move(op.done);
    bool known;
    {
      std::shared_lock lk(state_mu);
      known = namespaces.contains(op.ns);
    }
    if (!known) {
      pa->result.status = errc::invalid_argument;
      g.completions.push_back({std::move(pa), {}});
      return;
    }
    ns_state& gns = ns_for(g, op.ns);
    ns_state saved_ns = gns;  // (no topic vectors: cheap)
    std::unordered_map<uint64_t, topic_delta> saved_topics;
    std::vector<std::pair<uint64_t, size_t>> saved_chunks;  // chunk sizes before this request
    std::vector<std::string> added_ids;
    append_result& result = pa->result;
    int64_t ts = std::max(now_ms(), gns.last_ts);
    gns.last_ts = ts;
    result.ts_ms = ts;
    result.events.reserve(pa->events.size());
    errc failure = errc::ok;
    size_t bytes = 0;
    std::string value;
    for (const auto& ev : pa->events) {
      std::string dkey;
      if (!ev.id.empty()) {
        dkey = keys::dedupe(op.ns, ev.id);
        if (auto d = g.dedupe.find(dkey); d != g.dedupe.end()) {
          result.events.push_back({d->second.seq, d->second.topic_id, true});
          continue;
        }
        // (MultiGet over a whole group was measured: no cheaper here, its key sorting eats the gain.)
        struct {
          errc error = errc::ok;
          bool found = false;
          uint64_t seq = 0;
          uint32_t topic_id = 0;
          int64_t expires_ms = 0;
        } l;
        auto st = db->Get(rocksdb::ReadOptions(), cf[cf_dedupe], dkey, &value);
        if (st.ok()) {
          if (const schema::Dedupe* d = verified_dedupe(value)) {
            l.found = true;
            l.seq = d->seq();
            l.topic_id = d->topic_id();
            l.expires_ms = d->expires_ms();
          }
        } else if (!st.IsNotFound()) {
          l.error = from_status(st);
        }
        if (l.error != errc::ok) {
          failure = l.error;
          break;
        }
        if (l.found && l.expires_ms >= ts) {
          result.events.push_back({l.seq, l.topic_id, true});
          continue;
        }
      }
      topic_delta* td = topic_for(g, gns, ev.topic, ts);
      if (!td) {
        failure = errc::too_many_topics;
        break;
      }
      uint64_t tkey = (uint64_t{op.ns} << 32) | td->t.id;
      if (!saved_topics.contains(tkey)) saved_topics.emplace(tkey, *td);
      auto& chunk = g.chunks[tkey];
      if (std::none_of(saved_chunks.begin(), saved_chunks.end(), [&](const auto& c) { return c.first == tkey; }))
        saved_chunks.emplace_back(tkey, chunk.size());
      uint64_t seq = ++gns.head;
      td->t.last_seq = seq;
      ++td->t.count;
      chunk.push_back({seq, td->t.count, ts, &ev});
      bytes += approx_bytes(ev);
      if (!dkey.empty()) {
        g.dedupe[dkey] = {seq, td->t.id, ts + static_cast<int64_t>(gns.policy.dedupe_window.count())};
        added_ids.push_back(std::move(dkey));
      }
      result.events.push_back({seq, td->t.id, false});
    }
    if (failure != errc::ok) {
      gns = std::move(saved_ns);
      for (auto& [k, v] : saved_topics) g.topics.at(k) = std::move(v);
      std::erase_if(g.topics, [&](const auto& kv) {
        return kv.second.created && kv.second.ns == op.ns && !gns.topic_ids.contains(kv.second.t.name);
      });
      for (const auto& [k, n] : saved_chunks) {
        auto it = g.chunks.find(k);
        it->second.resize(n);
        if (n == 0) g.chunks.erase(it);
      }
      for (const auto& k : added_ids) g.dedupe.erase(k);
      result.status = failure;
      result.events.clear();
      g.completions.push_back({std::move(pa), {}});
      return;
    }
    g.has_append = true;
    g.bytes += bytes;
    size_t fresh = 0;
    for (const auto& a : result.events) fresh += a.duplicate ? 0 : 1;
    g.fresh += fresh;
    g.duplicates += result.events.size() - fresh;
    g.completions.push_back({std::move(pa), {}});
  }

  void process(std::vector<write_op>& ops) {
    maybe_resume();
    group g;
    auto commit_group = [&] {
      (void)commit(g);
      g = group();
    };
    for (auto& op : ops) {
      if (auto* a = std::get_if<op_append>(&op)) {
        add_append(g, *a);
      } else if (auto* p = std::get_if<op_put>(&op)) {
        if (p->erase) (void)g.batch.Delete(cf[p->cf], p->key);
        else (void)g.batch.Put(cf[p->cf], p->key, p->value);
        g.bytes += p->value.size();
        g.completions.push_back({nullptr, std::move(p->done)});
      } else if (auto* r = std::get_if<op_retention>(&op)) {
        commit_group();
        errc e = retention(r->ns);
        if (r->done) dispatch([done = std::move(r->done), e] { done(e); });
      } else if (auto* f = std::get_if<op_flush>(&op)) {
        commit_group();
        if (f->done) f->done->set_value(static_cast<errc>(health.load()));  // null: a probe
      }
      if (g.bytes >= opts.max_group_bytes) commit_group();
    }
    (void)commit(g);
  }

  void maybe_resume() {
    if (static_cast<errc>(health.load()) == errc::ok) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_resume < std::chrono::milliseconds(100)) return;
    last_resume = now;
    auto s = db->Resume();
    if (s.ok()) {
      logger.info("storage writes recovered");
      health.store(static_cast<int>(errc::ok));
    }
  }

  void dispatch(std::function<void()> run) {
    if (opts.dispatch && (!opts.inline_commit || inline_completions == completions::posted))
      opts.dispatch(std::move(run));
    else run();  // writer thread without dispatch, or an inline commit in its event-loop turn
  }

  // Serialises the group's chunks (one record per topic, split at max_chunk_events) and
  // producer ids into the batch, with exact byte accounting.
  void write_chunks(group& g, flatbuffers::FlatBufferBuilder& fb) {
    for (auto& [tkey, entries] : g.chunks) {
      auto ns_id = static_cast<uint32_t>(tkey >> 32);
      auto topic_id = static_cast<uint32_t>(tkey & 0xFFFFFFFF);
      topic_delta& td = g.topics.at(tkey);
      ns_state& gns = g.ns.at(ns_id);
      for (size_t from = 0; from < entries.size(); from += opts.max_chunk_events) {
        size_t to = std::min(entries.size(), from + opts.max_chunk_events);
        fb.Clear();
        std::vector<flatbuffers::Offset<schema::Event>> evs;
        evs.reserve(to - from);
        // One topic per chunk; event names usually repeat: each string is stored once.
        auto topic = fb.CreateString(entries[from].ev->topic);
        const std::string* last_event = nullptr;
        flatbuffers::Offset<flatbuffers::String> event;
        for (size_t i = from; i < to; ++i) {
          const chunk_entry& c = entries[i];
          const event_input& ev = *c.ev;
          std::vector<flatbuffers::Offset<schema::Attachment>> atts;
          for (const auto& a : ev.attachments)
            atts.push_back(schema::CreateAttachment(fb, fb.CreateVector(reinterpret_cast<const uint8_t*>(a.data()), a.size())));
          if (!last_event || *last_event != ev.event) {
            event = fb.CreateString(ev.event);
            last_event = &ev.event;
          }
          auto id = ev.id.empty() ? flatbuffers::Offset<flatbuffers::String>() : fb.CreateString(ev.id);
          auto data = fb.CreateString(ev.data);
          auto att_vec = atts.empty() ? flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<schema::Attachment>>>()
                                      : fb.CreateVector(atts);
          auto origin = ev.origin_topic.empty() ? flatbuffers::Offset<flatbuffers::String>() : fb.CreateString(ev.origin_topic);
          auto reason = ev.dlq_reason.empty() ? flatbuffers::Offset<flatbuffers::String>() : fb.CreateString(ev.dlq_reason);
          evs.push_back(schema::CreateEvent(fb, topic, event, id, c.ts, data, att_vec, origin, ev.origin_seq, reason,
                                            ev.deliveries, c.ordinal, c.seq));
        }
        fb.Finish(schema::CreateChunk(fb, fb.CreateVector(evs)));
        rocksdb::Slice value(reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize());
        (void)g.batch.Put(cf[cf_events], keys::event(ns_id, topic_id, entries[from].seq), value);
        td.t.bytes += value.size();
        gns.bytes_total += value.size();
      }
    }
    for (const auto& [key, id] : g.dedupe) {
      fb.Clear();
      fb.Finish(schema::CreateDedupe(fb, id.seq, id.topic_id, id.expires_ms));
      (void)g.batch.Put(cf[cf_dedupe], key,
                        rocksdb::Slice(reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()));
    }
  }

  errc commit(group& g) {
    if (g.completions.empty()) return errc::ok;
    int64_t ts = now_ms();
    flatbuffers::FlatBufferBuilder fb(16 << 10);
    write_chunks(g, fb);
    // Stats go to meta once per checkpoint interval (catch_up_meta() recovers what came
    // after); a new topic's record goes at once, it maps its name to its id.
    for (auto& [id, gns] : g.ns) {
      if (ts - gns.last_checkpoint_ms < opts.checkpoint_interval.count()) continue;
      (void)g.batch.Put(cf[cf_meta], keys::meta_head(id), u64_value(gns.head));
      (void)g.batch.Put(cf[cf_meta], keys::meta_bytes(id), u64_value(gns.bytes_total));
      fb.Clear();
      fb.Finish(schema::CreateCheckpoint(fb, gns.head, gns.bytes_total));
      (void)g.batch.Put(cf[cf_checkpoints], keys::checkpoint(id, static_cast<uint64_t>(gns.last_ts)),
                        rocksdb::Slice(reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()));
      gns.last_checkpoint_ms = ts;
      gns.meta_due = true;
    }
    for (auto& [key, td] : g.topics)
      if (td.created || g.ns.at(td.ns).meta_due)
        (void)g.batch.Put(cf[cf_meta], keys::meta_topic(td.ns, td.t.id), encode_topic_meta(td.t));

    rocksdb::WriteOptions wo;
    wo.sync = opts.sync == sync_mode::always || (opts.sync == sync_mode::batch && g.has_append);
    errc status = errc::ok;
    if (g.batch.Count() > 0) {
      if (auto h = static_cast<errc>(health.load()); h != errc::ok) {
        status = h;  // still failing; Resume() did not succeed yet
      } else {
        status = from_status(db->Write(wo, &g.batch));
        // Rate-limit Resume() from the first failure; commits refused above because the
        // error persists must not push the next attempt back, or a client retrying
        // faster than every 100 ms would keep the log from ever recovering.
        if (status != errc::ok) last_resume = std::chrono::steady_clock::now();
      }
    }
    if (status == errc::ok) {
      std::unique_lock lk(state_mu);
      for (auto& [id, gns] : g.ns) {
        auto& c = *namespaces.at(id);
        c.head = gns.head;
        c.bytes_total = gns.bytes_total;
        c.last_ts = gns.last_ts;
        c.last_checkpoint_ms = gns.last_checkpoint_ms;
      }
      for (auto& [key, td] : g.topics) {
        auto& c = *namespaces.at(td.ns);
        if (c.topics.size() < td.t.id) c.topics.resize(td.t.id);
        c.topic_ids[td.t.name] = td.t.id;
        c.topics[td.t.id - 1] = td.t;
      }
      ++group_commits;
      appended_events += g.fresh;
      duplicate_events += g.duplicates;
    } else {
      ++write_errors;
      if (health.exchange(static_cast<int>(status)) == static_cast<int>(errc::ok))
        logger.error("storage write failed: {}; publishes fail until it clears", to_string(status));
    }
    // One dispatch per group. No `this` inside: with options::dispatch the completions
    // may run after the log is gone.
    auto done = std::make_shared<std::vector<completion>>(std::move(g.completions));
    dispatch([done, status] {
      for (auto& c : *done) {
        if (c.append) {
          pending_append& pa = *c.append;
          if (status != errc::ok && pa.result.status == errc::ok) {
            pa.result.status = status;
            pa.result.events.clear();
          }
          if (pa.done) pa.done(pa.result, pa.events);
        } else if (c.other) {
          c.other(status);
        }
      }
    });
    return status;
  }

  errc retention(uint32_t ns_id) {
    ns_state copy;
    std::vector<topic_state> topics;
    {
      std::shared_lock lk(state_mu);
      auto it = namespaces.find(ns_id);
      if (it == namespaces.end()) return errc::invalid_argument;
      copy.id = ns_id;
      copy.bytes_total = it->second->bytes_total;
      copy.low_water = it->second->low_water;
      copy.head = it->second->head;
      copy.policy = it->second->policy;
      topics = it->second->topics;
    }
    if (copy.policy.retention_age.count() == 0 && copy.policy.retention_bytes == 0) return errc::ok;
    int64_t cutoff = copy.policy.retention_age.count() > 0 ? now_ms() - copy.policy.retention_age.count() : INT64_MIN;
    uint64_t cut = 0;
    std::string last_cut_key;
    std::string prefix = keys::namespace_prefix(ns_id);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[cf_checkpoints]));
    // Checkpoints are in time order: walk from the oldest while they are to be removed.
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      std::string value(it->value().data(), it->value().size());
      const schema::Checkpoint* cp = verified_checkpoint(value);
      if (!cp) {
        ++corrupt_records;
        return errc::corruption;
      }
      bool too_old = static_cast<int64_t>(keys::checkpoint_ts(k)) < cutoff;
      bool too_big = copy.policy.retention_bytes > 0 && copy.bytes_total - cp->bytes_total() > copy.policy.retention_bytes;
      if (!too_old && !too_big) break;
      if (cp->last_seq() >= copy.head) break;  // never remove the newest checkpoint's events
      cut = cp->last_seq();
      last_cut_key = std::string(k);
    }
    if (!it->status().ok()) return from_status(it->status());
    if (cut <= copy.low_water) return errc::ok;
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> ev(db->NewIterator(rocksdb::ReadOptions(), cf[cf_events]));
    for (auto& t : topics) {
      if (t.id == 0 || t.first_seq >= std::min(cut, t.last_seq)) continue;
      // Whole chunks go: those whose events are all at or below the cut. first_seq records
      // the last event of this topic retention removed, so a reader positioned at p lost
      // events exactly when p < first_seq.
      std::string prefix_t = keys::topic_prefix(ns_id, t.id);
      uint64_t last_removed = 0;
      std::string end_key;
      ev->SeekForPrev(keys::event(ns_id, t.id, cut));
      for (int step = 0; step < 2 && ev->Valid() && ev->key().starts_with(prefix_t); ++step) {
        std::string value(ev->value().data(), ev->value().size());
        const schema::Chunk* c = verified_chunk(value);
        if (!c) {
          ++corrupt_records;
          return errc::corruption;
        }
        uint64_t last = c->events()->Get(c->events()->size() - 1)->seq();
        if (last <= cut) {  // this chunk and every one before it go
          last_removed = last;
          end_key = keys::event(ns_id, t.id, keys::event_seq({ev->key().data(), ev->key().size()}) + 1);
          break;
        }
        ev->Prev();  // the chunk straddles the cut: it stays, the ones before it go
      }
      if (!ev->status().ok()) return from_status(ev->status());
      if (last_removed == 0) continue;
      t.first_seq = last_removed;
      (void)batch.DeleteRange(cf[cf_events], keys::event(ns_id, t.id, 0), end_key);
      (void)batch.Put(cf[cf_meta], keys::meta_topic(ns_id, t.id), encode_topic_meta(t));
    }
    std::string end = last_cut_key;
    end.push_back('\0');  // the cut checkpoint itself goes too
    (void)batch.DeleteRange(cf[cf_checkpoints], prefix, end);
    (void)batch.Put(cf[cf_meta], keys::meta_low_water(ns_id), u64_value(cut));
    rocksdb::WriteOptions wo;
    wo.sync = opts.sync != sync_mode::none;
    errc e = from_status(db->Write(wo, &batch));
    if (e != errc::ok) return e;
    std::unique_lock lk(state_mu);
    auto& c = *namespaces.at(ns_id);
    c.low_water = cut;
    for (const auto& t : topics)
      if (t.id && t.id <= c.topics.size()) c.topics[t.id - 1].first_seq = t.first_seq;
    logger.info("retention: namespace {} now starts after seq {}", c.name, cut);
    return errc::ok;
  }
};

// ---------------------------------------------------------------------------------

std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::not_found: return "not found";
    case errc::io_error: return "storage I/O error";
    case errc::no_space: return "no space left on the storage device";
    case errc::corruption: return "corrupt record";
    case errc::invalid_argument: return "invalid argument";
    case errc::overloaded: return "storage overloaded";
    case errc::closed: return "storage closed";
    case errc::read_only: return "storage is read-only";
    case errc::too_many_topics: return "too many topics";
    case errc::epoch_mismatch: return "position from another data directory";
  }
  return "unknown";
}

bool parse_sync_mode(std::string_view text, sync_mode& out) noexcept {
  if (text == "none") out = sync_mode::none;
  else if (text == "batch") out = sync_mode::batch;
  else if (text == "always") out = sync_mode::always;
  else return false;
  return true;
}

std::string_view to_string(sync_mode m) noexcept {
  switch (m) {
    case sync_mode::none: return "none";
    case sync_mode::batch: return "batch";
    case sync_mode::always: return "always";
  }
  return "?";
}

log::log(std::unique_ptr<impl> p) : _impl(std::move(p)) {
  _epoch = _impl->epoch;
  _opts = _impl->opts;
}

log::~log() = default;

const std::string& log::dir() const noexcept { return _impl->dir; }

result<std::unique_ptr<log>> log::open(const std::string& dir, options opts) {
  auto p = std::make_unique<impl>();
  p->opts = opts;
  p->dir = dir;

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = !opts.read_only;
  dbo.create_missing_column_families = !opts.read_only;
  dbo.max_background_jobs = 2;
  dbo.max_open_files = 512;
  dbo.keep_log_file_num = 3;
  dbo.max_total_wal_size = 256 << 20;
  dbo.bytes_per_sync = 1 << 20;
  // No RocksDB auto-resume thread for retryable errors: the writer calls Resume()
  // itself. In RocksDB < 8.8 closing the DB while that thread waits to retry hangs
  // forever (facebook/rocksdb#11440).
  dbo.max_bgerror_resume_count = 0;
  // Writes come from one thread (the writer or the io thread), never concurrently.
  dbo.allow_concurrent_memtable_write = false;
  if (opts.faults) {
    auto fs = std::make_shared<faulty_fs>(rocksdb::FileSystem::Default(), opts.faults);
    p->env = rocksdb::NewCompositeEnv(fs);
    dbo.env = p->env.get();
  }

  auto cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  auto table = [&](bool bloom) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    // Index and Bloom filter blocks live in the block cache, partitioned so that a lookup
    // loads 4 KiB of them, not a whole file's: otherwise RocksDB keeps them on the heap
    // for every table, and RSS grows with the data retained (~1.5 B per deduplicated id,
    // ~6 B per events chunk). Unpartitioned, cached filters thrashed: 2k publishes/s.
    t.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
    t.partition_filters = bloom;
    t.metadata_block_size = 4096;
    t.cache_index_and_filter_blocks = true;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.pin_top_level_index_and_filter = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    if (bloom) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
  };
  static dedupe_expiry dedupe_filter;
  static session_expiry session_filter;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (size_t i = 0; i < cf_count; ++i) {
    rocksdb::ColumnFamilyOptions co;
    co.table_factory = table(i == cf_dedupe || i == cf_sessions || i == cf_positions);
    co.compression = rocksdb::kLZ4Compression;
    // LZ4 on every level: a ZSTD bottommost level turned each L0->L1 move of the events
    // column family (sequential keys, no overlap) into a full recompression.
    co.bottommost_compression = rocksdb::kLZ4Compression;
    if (i == cf_events) {
      co.write_buffer_size = opts.write_buffer_bytes;
      co.max_write_buffer_number = 4;
      // Not memtable_insert_with_hint_prefix_extractor: RocksDB 7.8 reuses the hint for
      // range tombstones (retention's DeleteRange) and trips a skiplist assertion.
    } else {
      co.write_buffer_size = 16 << 20;
    }
    if (i == cf_dedupe) {
      co.compaction_filter = &dedupe_filter;
      // Ids arrive in random key order and stay for the whole window, so with leveled
      // compaction every L0 flush rewrote all of L1: 14 s of compaction CPU per 90 s
      // of the P7 soak. Universal compaction merges runs of similar size: 7.6 s.
      co.compaction_style = rocksdb::kCompactionStyleUniversal;
      // Producer ids are only ever looked up by key: a whole-key bloom in the memtable
      // answers most misses without a skiplist search. Not a hashed memtable: its flush
      // sorts every entry into a fresh skiplist on the flush thread, which cost a quarter
      // of the broker's CPU under P1 (bench/RESULTS.md).
      co.memtable_whole_key_filtering = true;
      co.memtable_prefix_bloom_size_ratio = 0.05;
    }
    if (i == cf_sessions) co.compaction_filter = &session_filter;
    cfs.emplace_back(cf_names[i], co);
  }
  rocksdb::Options all(dbo, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (opts.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) return errc::not_found;
    char tmpl[] = "/tmp/ferry-secondary-XXXXXX";
    if (!mkdtemp(tmpl)) return errc::io_error;
    p->secondary_dir = tmpl;
    all.max_open_files = -1;  // required for secondaries
    s = rocksdb::DB::OpenAsSecondary(all, dir, p->secondary_dir, cfs, &p->cf, &raw);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    s = rocksdb::DB::Open(all, dir, cfs, &p->cf, &raw);
  }
  if (!s.ok()) {
    logger.error("cannot open data directory {}: {}", dir, s.ToString());
    return from_status(s);
  }
  p->db.reset(raw);
  if (errc e = p->load_meta(); e != errc::ok) return e;
  if (p->epoch == 0) {
    if (opts.read_only) return errc::corruption;
    uint32_t epoch = 0;
    while (epoch == 0)
      if (::getrandom(&epoch, sizeof epoch, 0) != sizeof epoch) return errc::io_error;
    std::string v;
    keys::put_u32(v, epoch);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (auto st = p->db->Put(wo, p->cf[cf_meta], keys::meta_epoch, v); !st.ok()) return from_status(st);
    p->epoch = epoch;
    logger.info("created data directory {} (epoch {:08x})", dir, epoch);
  }
  if (opts.inline_commit && !opts.dispatch) return errc::invalid_argument;  // nothing would run the commits
  if (!opts.read_only && !opts.inline_commit) {
    auto* ip = p.get();
    p->writer = std::thread([ip] { ip->writer_loop(); });
  }
  return std::unique_ptr<log>(new log(std::move(p)));
}

log_stats log::stats() const {
  log_stats s;
  s.appended_events = _impl->appended_events.load();
  s.duplicate_events = _impl->duplicate_events.load();
  s.group_commits = _impl->group_commits.load();
  s.write_errors = _impl->write_errors.load();
  s.corrupt_records = _impl->corrupt_records.load();
  return s;
}

errc log::health() const noexcept { return static_cast<errc>(_impl->health.load()); }

result<uint32_t> log::namespace_id(std::string_view name) {
  if (auto id = find_namespace(name)) return *id;
  if (_opts.read_only) return errc::not_found;
  std::lock_guard create(_impl->create_mu);
  if (auto id = find_namespace(name)) return *id;
  uint32_t id = 1;
  {
    std::shared_lock lk(_impl->state_mu);
    for (auto& [k, v] : _impl->namespaces) id = std::max(id, k + 1);
  }
  std::string v;
  keys::put_u32(v, id);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto s = _impl->db->Put(wo, _impl->cf[cf_meta], keys::meta_namespace(name), v); !s.ok()) return from_status(s);
  std::unique_lock lk(_impl->state_mu);
  auto& ns = _impl->ensure_ns(id);
  ns.name = std::string(name);
  _impl->namespace_ids[ns.name] = id;
  return id;
}

std::optional<uint32_t> log::find_namespace(std::string_view name) const {
  std::shared_lock lk(_impl->state_mu);
  auto it = _impl->namespace_ids.find(std::string(name));
  if (it == _impl->namespace_ids.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, uint32_t>> log::namespaces() const {
  std::shared_lock lk(_impl->state_mu);
  std::vector<std::pair<std::string, uint32_t>> out(_impl->namespace_ids.begin(), _impl->namespace_ids.end());
  std::sort(out.begin(), out.end());
  return out;
}

void log::set_policy(uint32_t ns, const namespace_policy& policy) {
  std::unique_lock lk(_impl->state_mu);
  if (auto it = _impl->namespaces.find(ns); it != _impl->namespaces.end()) it->second->policy = policy;
}

namespace_policy log::policy(uint32_t ns) const {
  std::shared_lock lk(_impl->state_mu);
  auto it = _impl->namespaces.find(ns);
  return it == _impl->namespaces.end() ? namespace_policy{} : it->second->policy;
}

std::optional<uint32_t> log::find_topic(uint32_t ns, std::string_view name) const {
  std::shared_lock lk(_impl->state_mu);
  auto it = _impl->namespaces.find(ns);
  if (it == _impl->namespaces.end()) return std::nullopt;
  auto t = it->second->topic_ids.find(std::string(name));
  if (t == it->second->topic_ids.end()) return std::nullopt;
  return t->second;
}

namespace {
topic_info to_info(const topic_state& t) {
  return {t.name, t.id, t.created_ms, t.first_seq, t.last_seq, t.count, t.bytes};
}
}  // namespace

std::optional<topic_info> log::topic(uint32_t ns, uint32_t id) const {
  std::shared_lock lk(_impl->state_mu);
  auto it = _impl->namespaces.find(ns);
  if (it == _impl->namespaces.end() || id == 0 || id > it->second->topics.size()) return std::nullopt;
  const auto& t = it->second->topics[id - 1];
  if (t.id == 0) return std::nullopt;
  return to_info(t);
}

std::vector<topic_info> log::topics(uint32_t ns) const {
  std::shared_lock lk(_impl->state_mu);
  std::vector<topic_info> out;
  auto it = _impl->namespaces.find(ns);
  if (it == _impl->namespaces.end()) return out;
  for (const auto& t : it->second->topics)
    if (t.id) out.push_back(to_info(t));
  std::sort(out.begin(), out.end(), [](const topic_info& a, const topic_info& b) { return a.name < b.name; });
  return out;
}

uint64_t log::head(uint32_t ns) const {
  std::shared_lock lk(_impl->state_mu);
  auto it = _impl->namespaces.find(ns);
  return it == _impl->namespaces.end() ? 0 : it->second->head;
}

uint64_t log::low_water(uint32_t ns) const {
  std::shared_lock lk(_impl->state_mu);
  auto it = _impl->namespaces.find(ns);
  return it == _impl->namespaces.end() ? 0 : it->second->low_water;
}

void log::append(uint32_t ns, std::vector<event_input> events, append_callback done) {
  if (_opts.read_only || events.empty()) {
    append_result r;
    r.status = _opts.read_only ? errc::read_only : errc::invalid_argument;
    if (done) done(r, events);
    return;
  }
  _impl->enqueue(op_append{ns, std::move(events), std::move(done)});
}

void log::put_session(const session_record& s, write_callback done) {
  if (_opts.read_only) {
    if (done) done(errc::read_only);
    return;
  }
  _impl->enqueue(op_put{cf_sessions, s.pid, encode(s), false, std::move(done)});
}

void log::delete_session(std::string_view pid, write_callback done) {
  if (_opts.read_only) {
    if (done) done(errc::read_only);
    return;
  }
  _impl->enqueue(op_put{cf_sessions, std::string(pid), {}, true, std::move(done)});
}

void log::put_position(uint32_t ns, std::string_view consumer, uint32_t topic, uint64_t seq, write_callback done) {
  if (_opts.read_only) {
    if (done) done(errc::read_only);
    return;
  }
  flatbuffers::FlatBufferBuilder fb(64);
  fb.Finish(schema::CreatePosition(fb, seq, now_ms()));
  _impl->enqueue(op_put{cf_positions, keys::position(ns, consumer, topic),
                        std::string(reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()), false,
                        std::move(done)});
}

void log::enforce_retention(uint32_t ns, write_callback done) {
  if (_opts.read_only) {
    if (done) done(errc::read_only);
    return;
  }
  _impl->enqueue(op_retention{ns, std::move(done)});
}

errc log::flush() {
  if (_opts.read_only) return errc::ok;
  if (_opts.inline_commit) {  // we are the committing thread: commit now
    _impl->run_inline(impl::completions::posted);
    return health();
  }
  std::promise<errc> p;
  auto f = p.get_future();
  _impl->enqueue(op_flush{&p});
  return f.get();
}

void log::probe() {
  if (_opts.read_only || health() == errc::ok) return;
  _impl->enqueue(op_flush{nullptr});
}

size_t stored_event::size() const noexcept {
  if (!ev) return 0;
  size_t n = 48;
  for (const auto* str : {ev->topic(), ev->event(), ev->id(), ev->data()}) n += str ? str->size() : 0;
  if (ev->attachments())
    for (const auto* a : *ev->attachments()) n += a && a->bytes() ? a->bytes()->size() + 8 : 0;
  return n;
}

namespace {

// Positions `it` on the chunk that holds `seq` or the first chunk after it, within one
// topic (whose key prefix is `prefix`). Invalid when the topic has nothing at or after seq.
void seek_chunk(rocksdb::Iterator& it, const std::string& prefix, const std::string& target) {
  it.SeekForPrev(target);
  if (!it.Valid() || !it.key().starts_with(prefix)) it.Seek(target);
}

}  // namespace

errc log::read(uint32_t ns, uint32_t topic, uint64_t after_seq, size_t max_events, size_t max_bytes,
               std::vector<stored_event>& out) const {
  if (after_seq == UINT64_MAX || max_events == 0) return errc::ok;
  std::string prefix = keys::topic_prefix(ns, topic);
  std::string end = topic < UINT32_MAX ? keys::event(ns, topic + 1, 0) : keys::event(ns + 1, 0, 0);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(_impl->db->NewIterator(ro, _impl->cf[cf_events]));
  size_t bytes = 0, count = 0;
  for (seek_chunk(*it, prefix, keys::event(ns, topic, after_seq + 1));
       it->Valid() && it->key().starts_with(prefix) && count < max_events && bytes < max_bytes; it->Next()) {
    auto chunk = std::make_shared<std::string>(it->value().data(), it->value().size());  // an aligned copy
    const schema::Chunk* c = verified_chunk(*chunk);
    if (!c) {
      ++_impl->corrupt_records;
      logger.error("corrupt event chunk at namespace {} topic {} seq {}", ns, topic,
                   keys::event_seq({it->key().data(), it->key().size()}));
      return errc::corruption;
    }
    for (const auto* e : *c->events()) {
      if (e->seq() <= after_seq) continue;
      if (count >= max_events || bytes >= max_bytes) break;
      stored_event se{e->seq(), chunk, e};
      bytes += se.size();
      out.push_back(std::move(se));
      ++count;
    }
  }
  return from_status(it->status());
}

result<stored_event> log::get(uint32_t ns, uint32_t topic, uint64_t seq) const {
  std::string prefix = keys::topic_prefix(ns, topic);
  std::unique_ptr<rocksdb::Iterator> it(_impl->db->NewIterator(rocksdb::ReadOptions(), _impl->cf[cf_events]));
  it->SeekForPrev(keys::event(ns, topic, seq));
  if (!it->status().ok()) return from_status(it->status());
  if (!it->Valid() || !it->key().starts_with(prefix)) return errc::not_found;
  auto chunk = std::make_shared<std::string>(it->value().data(), it->value().size());
  const schema::Chunk* c = verified_chunk(*chunk);
  if (!c) {
    ++_impl->corrupt_records;
    return errc::corruption;
  }
  const auto* events = c->events();
  size_t lo = 0, hi = events->size();
  while (lo < hi) {  // events are in seq order
    size_t mid = (lo + hi) / 2;
    if (events->Get(static_cast<flatbuffers::uoffset_t>(mid))->seq() < seq) lo = mid + 1;
    else hi = mid;
  }
  if (lo == events->size() || events->Get(static_cast<flatbuffers::uoffset_t>(lo))->seq() != seq) return errc::not_found;
  return stored_event{seq, chunk, events->Get(static_cast<flatbuffers::uoffset_t>(lo))};
}

result<session_record> log::get_session(std::string_view pid) const {
  std::string value;
  auto s = _impl->db->Get(rocksdb::ReadOptions(), _impl->cf[cf_sessions], std::string(pid), &value);
  if (!s.ok()) return from_status(s);
  auto r = decode_session(value);
  if (!r) {
    ++_impl->corrupt_records;
    return r.error();
  }
  if (r->expires_ms < now_ms()) return errc::not_found;
  return r;
}

result<uint64_t> log::get_position(uint32_t ns, std::string_view consumer, uint32_t topic) const {
  std::string value;
  auto s = _impl->db->Get(rocksdb::ReadOptions(), _impl->cf[cf_positions], keys::position(ns, consumer, topic), &value);
  if (!s.ok()) return from_status(s);
  const schema::Position* p = verified_position(value);
  if (!p) {
    ++_impl->corrupt_records;
    return errc::corruption;
  }
  return p->seq();
}

std::vector<position_info> log::positions(uint32_t ns) const {
  std::vector<position_info> out;
  std::string prefix = keys::namespace_prefix(ns);
  std::unique_ptr<rocksdb::Iterator> it(_impl->db->NewIterator(rocksdb::ReadOptions(), _impl->cf[cf_positions]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.size() < 10) continue;
    size_t len = (static_cast<unsigned char>(k[4]) << 8) | static_cast<unsigned char>(k[5]);
    if (k.size() != 6 + len + 4) continue;
    std::string value(it->value().data(), it->value().size());
    const schema::Position* p = verified_position(value);
    if (!p) {
      ++_impl->corrupt_records;
      continue;
    }
    out.push_back({std::string(k.substr(6, len)), keys::get_u32(k, 6 + len), p->seq(), p->updated_ms()});
  }
  return out;
}

uint64_t log::seq_before_time(uint32_t ns, int64_t ts_ms) const {
  if (ts_ms <= 0) return 0;
  std::string target = keys::checkpoint(ns, static_cast<uint64_t>(ts_ms - 1));
  std::string prefix = keys::namespace_prefix(ns);
  std::unique_ptr<rocksdb::Iterator> it(_impl->db->NewIterator(rocksdb::ReadOptions(), _impl->cf[cf_checkpoints]));
  it->SeekForPrev(target);
  if (!it->Valid() || !it->key().starts_with(prefix)) return low_water(ns);
  std::string value(it->value().data(), it->value().size());
  const schema::Checkpoint* cp = verified_checkpoint(value);
  return cp ? cp->last_seq() : low_water(ns);
}

errc log::refresh() {
  if (!_opts.read_only) return errc::ok;
  auto s = _impl->db->TryCatchUpWithPrimary();
  if (!s.ok()) return from_status(s);
  return _impl->load_meta();
}

}  // namespace ferry::storage
