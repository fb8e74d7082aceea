// random.h - ids from the kernel CSPRNG (getrandom), buffered to keep syscalls rare.
#pragma once

#include <cstddef>
#include <string>

namespace ferry::broker {

void random_bytes(void* out, size_t n);
// A 20-character URL-safe id from 15 random bytes (the reference server's base64id).
[[nodiscard]] std::string random_id();

}  // namespace ferry::broker
