// rocksdb_limit - the physical reference for P2: raw RocksDB batched puts on this machine
// (same column family options as Ferry's events: LZ4, 64 MiB memtable), with and without
// fsync, keys ordered like Ferry's (namespace|topic|seq), 100-byte values by default.
//   rocksdb_limit --dir /tmp/x --events 2000000 --batch 500 [--sync] [--value 100]
// Prints {"puts_per_s":..., "sync":..., "batch":...}.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

int main(int argc, char** argv) {
  CLI::App app{"raw RocksDB batched put rate (the P2 reference)"};
  std::string dir = "/tmp/ferry-rocksdb-limit";
  size_t events = 2000000, batch = 500, value = 100;
  bool sync = false;
  app.add_option("--dir", dir)->capture_default_str();
  app.add_option("--events", events)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--value", value)->capture_default_str();
  app.add_flag("--sync", sync, "fsync the WAL on every batch");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::remove_all(dir);
  rocksdb::Options o;
  o.create_if_missing = true;
  o.compression = rocksdb::kLZ4Compression;
  o.write_buffer_size = 64 << 20;
  o.max_write_buffer_number = 4;
  o.max_background_jobs = 2;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) {
    fmt::print(stderr, "open: {}\n", s.ToString());
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string v(value, 'x');
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  auto t0 = std::chrono::steady_clock::now();
  char key[16] = {0, 0, 0, 1, 0, 0, 0, 1};
  for (size_t i = 0; i < events;) {
    rocksdb::WriteBatch b;
    for (size_t j = 0; j < batch && i < events; ++j, ++i) {
      uint64_t seq = i + 1;
      for (int k = 0; k < 8; ++k) key[8 + k] = static_cast<char>(seq >> (56 - 8 * k));
      b.Put(rocksdb::Slice(key, 16), v);
    }
    s = db->Write(wo, &b);
    if (!s.ok()) {
      fmt::print(stderr, "write: {}\n", s.ToString());
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(R"({{"scenario":"rocksdb_limit","events":{},"batch":{},"value":{},"sync":{},"seconds":{:.3f},"puts_per_s":{:.0f}}})" "\n",
             events, batch, value, sync ? "true" : "false", secs, static_cast<double>(events) / secs);
  db.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
