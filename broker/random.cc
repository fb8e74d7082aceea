#include "broker/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "protocol/offset.h"

namespace ferry::broker {
namespace {
thread_local unsigned char pool[4096];
thread_local size_t pool_left = 0;

void refill() {
  size_t got = 0;
  while (got < sizeof pool) {
    ssize_t n = ::getrandom(pool + got, sizeof pool - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));  // broken invariant
    }
    got += static_cast<size_t>(n);
  }
  pool_left = sizeof pool;
}
}  // namespace

void random_bytes(void* out, size_t n) {
  auto* dst = static_cast<unsigned char*>(out);
  while (n > 0) {
    if (pool_left == 0) refill();
    size_t take = n < pool_left ? n : pool_left;
    std::memcpy(dst, pool + (sizeof pool - pool_left), take);
    // wipe what we hand out so the pool never repeats bytes
    std::memset(pool + (sizeof pool - pool_left), 0, take);
    pool_left -= take;
    dst += take;
    n -= take;
  }
}

std::string random_id() {
  unsigned char bytes[15];
  random_bytes(bytes, sizeof bytes);
  return protocol::encode_id(bytes);
}

}  // namespace ferry::broker
