// proc_stats.h - CPU seconds and RSS of this process and of another one (the server under
// test), read from getrusage and /proc, for the benchmark tools' reports.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace ferry::bench {

inline double cpu_seconds_self() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime of `pid` in seconds; 0 when there is no such process.
inline double cpu_seconds_of(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');  // the command name may contain spaces and parentheses
  if (rp == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t i = rp + 2;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    fields.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  if (fields.size() < 13) return 0;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

inline long rss_kib(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// CPU share (1.0 = one core) of this process and of `pid` since construction.
struct cpu_meter {
  int pid;
  double self0, srv0;
  std::chrono::steady_clock::time_point t0;
  explicit cpu_meter(int p)
      : pid(p), self0(cpu_seconds_self()), srv0(cpu_seconds_of(p)), t0(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double self_share() const { return (cpu_seconds_self() - self0) / wall(); }
  [[nodiscard]] double server_share() const { return pid > 0 ? (cpu_seconds_of(pid) - srv0) / wall() : -1.0; }
  [[nodiscard]] std::string json() const {
    return fmt::format(R"("loadgen_cpu":{:.2f},"server_cpu":{:.2f})", self_share(), server_share());
  }

 private:
  [[nodiscard]] double wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

}  // namespace ferry::bench
