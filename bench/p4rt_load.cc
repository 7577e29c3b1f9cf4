// p4rt_load: a compiled P4Runtime load client, so that a benchmark measures the server apart from
// a Python client (grpc.aio spends about as much CPU per unary call as the server does).
//
// Sends pre-built, serialised requests of one unary method, each once, keeping up to N calls in
// flight on one channel, and checks that every call ends OK. The requests come from a file written
// by the benchmark: each is a 4-byte big-endian length followed by that many bytes.
//
//   p4rt_load ADDRESS METHOD IN_FLIGHT FILE
//   p4rt_load 127.0.0.1:9559 /p4.v1.P4Runtime/Write 32 /tmp/writes.bin
//
// Prints one JSON object: {"calls": n, "ok": n, "failed": n, "seconds": s, "per_s": r,
// "first_error": "..."}. Exit status 0 if every call ended OK, 1 otherwise, 2 on bad usage.
// Built by `make bench` (Debian's libgrpc++-dev).

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
};

bool ReadRequests(const std::string& path, std::vector<grpc::ByteBuffer>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  for (;;) {
    unsigned char head[4];
    if (!in.read(reinterpret_cast<char*>(head), 4)) return in.eof();
    uint32_t len = (uint32_t{head[0]} << 24) | (uint32_t{head[1]} << 16) | (uint32_t{head[2]} << 8) | head[3];
    std::string body(len, '\0');
    if (!in.read(body.data(), len)) return false;
    grpc::Slice slice(body);
    out->emplace_back(&slice, 1);
  }
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: p4rt_load ADDRESS METHOD IN_FLIGHT FILE\n";
    return 2;
  }
  const std::string address = argv[1], method = argv[2], path = argv[4];
  const long in_flight = std::strtol(argv[3], nullptr, 10);
  if (in_flight < 1) {
    std::cerr << "p4rt_load: IN_FLIGHT must be >= 1, got " << argv[3] << "\n";
    return 2;
  }
  std::vector<grpc::ByteBuffer> requests;
  if (!ReadRequests(path, &requests)) {
    std::cerr << "p4rt_load: cannot read length-prefixed requests from " << path << "\n";
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::cerr << "p4rt_load: cannot connect to " << address << " within 10 s\n";
    return 2;
  }
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;

  size_t next = 0, done = 0, ok = 0;
  std::string first_error;
  auto start = [&](size_t i) {
    auto* call = new Call;
    call->reader = stub.PrepareUnaryCall(&call->context, method, requests[i], &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (; next < requests.size() && next < static_cast<size_t>(in_flight); ++next) start(next);
  void* tag;
  bool got;
  while (done < requests.size() && cq.Next(&tag, &got)) {
    auto* call = static_cast<Call*>(tag);
    ++done;
    if (got && call->status.ok()) {
      ++ok;
    } else if (first_error.empty()) {
      first_error = std::to_string(call->status.error_code()) + ": " + call->status.error_message();
    }
    delete call;
    if (next < requests.size()) start(next++);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cq.Shutdown();
  while (cq.Next(&tag, &got)) {
  }
  std::printf("{\"calls\": %zu, \"ok\": %zu, \"failed\": %zu, \"seconds\": %.4f, \"per_s\": %.1f, \"first_error\": \"%s\"}\n",
              done, ok, done - ok, secs, secs > 0 ? done / secs : 0.0, JsonEscape(first_error).c_str());
  return ok == requests.size() ? 0 : 1;
}
