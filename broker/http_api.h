// http_api.h - Ferry's HTTP API on the broker port (README "HTTP API"):
//   POST /v1/publish[?namespace=/]            same body and reply as the `publish` event
//   GET  /v1/topics[?namespace=/]             topics with head offset, count, bytes
//   GET  /v1/topics/<topic>/events?from=&limit=&namespace=   read events (JSON)
//   GET  /v1/consumers[?namespace=&consumer=]  named consumers: position and lag per topic
//   POST /v1/positions                        {consumer, topic, to, namespace?}: move a position
//   GET  /v1/dlq[?namespace=]                 dead-letter topics and their depth
//   POST /v1/dlq/redrive                      {consumer, namespace?, limit?}: republish DLQ events
//   GET  /v1/stats                            counters as JSON
//   GET  /healthz                             200 when storage writes work, 503 otherwise
//   GET  /metrics                             Prometheus text format
// Threading: io thread.
#pragma once

#include <memory>

#include "broker/engine.h"
#include "broker/engineio.h"
#include "broker/http_server.h"
#include "broker/socketio.h"
#include "storage/fault.h"

namespace ferry::broker {

class http_api {
 public:
  http_api(http_server& http, engine& eng, sio::server& sio, std::shared_ptr<storage::fault_injector> faults);

 private:
  void publish(const std::shared_ptr<http_exchange>& ex);
  void topics(const std::shared_ptr<http_exchange>& ex);
  void health(const std::shared_ptr<http_exchange>& ex);
  void metrics(const std::shared_ptr<http_exchange>& ex);
  void debug_fault(const std::shared_ptr<http_exchange>& ex);
  void consumers(const std::shared_ptr<http_exchange>& ex);
  void set_position(const std::shared_ptr<http_exchange>& ex);
  void dlq(const std::shared_ptr<http_exchange>& ex);
  void redrive(const std::shared_ptr<http_exchange>& ex);
  void stats(const std::shared_ptr<http_exchange>& ex);

  http_server& _http;
  engine& _engine;
  sio::server& _sio;
  std::shared_ptr<storage::fault_injector> _faults;
};

// JSON reply helpers shared by the API handlers.
[[nodiscard]] http_response json_response(int status, std::string body);

}  // namespace ferry::broker
