// client.h - everything of ferry-client in one include.
//
//   ferry/client/export.h    FERRY_CLIENT_API (symbol visibility)
//   ferry/client/error.h     errc, error, result<T>, config_error
//   ferry/client/log.h       log_level, log_sink
//   ferry/client/runner.h    runner: an io_context and its thread, for hosts without one
//   ferry/client/socketio.h  sio::client / sio::socket: plain Socket.IO v5 over WebSocket
//   ferry/client/producer.h  producer: batched, acknowledged, optionally spooled publishing
//   ferry/client/consumer.h  consumer: subscriptions with offsets, ack mode, resume
#pragma once

#include "ferry/client/consumer.h"
#include "ferry/client/error.h"
#include "ferry/client/log.h"
#include "ferry/client/producer.h"
#include "ferry/client/runner.h"
#include "ferry/client/socketio.h"
#include "ferry/client/version.h"
