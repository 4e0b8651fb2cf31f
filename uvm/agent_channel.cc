#include "uvm/agent_channel.h"

namespace uvmshim::uvm {

grpc::ChannelArguments AgentChannelArguments() {
  grpc::ChannelArguments args;
  // The guest is not trusted: a message larger than any real one (stdio
  // chunks, stats, specs of at most 1 MiB) is refused, not buffered.
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  // Big HTTP/2 windows: the default BDP probing starts small and a 512 MiB
  // stream spends most of its time in window updates otherwise.
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 1);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  args.SetInt(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, 1 << 20);
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 4 << 20);
  args.SetInt(GRPC_ARG_TCP_READ_CHUNK_SIZE, 1 << 20);
  args.SetInt(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 256 << 10);
  args.SetInt(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 4 << 20);
  // One connection per agent: a virtio-serial port carries exactly one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Fast reconnects (50 ms .. 500 ms instead of gRPC's 1 s .. 120 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // gRPC reads this as the minimum *connect timeout*: how long a connection
  // may wait for the server's SETTINGS. QEMU accepts the port's socket at
  // once but the agent answers only once the guest has booted (seconds under
  // TCG); a short value would drop and redial the port over and over.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 30000);
  return args;
}

std::shared_ptr<grpc::Channel> MakeAgentChannel(const std::string& target) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), AgentChannelArguments());
}

}  // namespace uvmshim::uvm
