// export.h - marks the public API of libferry-client.
//
// The shared library is built with default symbol visibility on purpose: hiding symbols
// (-fvisibility=hidden or a version script) would also give it private copies of Asio's
// template statics (the per-thread call stacks that io_context::run() and strands
// consult), which must be shared with a host that runs its own io_context. The marker
// keeps the API explicit for a future build that hides the rest.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define FERRY_CLIENT_API __attribute__((visibility("default")))
#else
#define FERRY_CLIENT_API
#endif
