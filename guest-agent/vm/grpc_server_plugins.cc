// gRPC's plugin list for the initrd's static agent (uvm-agent-static only;
// cmake/static_agent.cmake compiles this file into no other binary).
//
// Why: gRPC core builds its configuration by calling one function,
// grpc_core::BuildCoreConfiguration, which registers every plugin of the
// library: the client channel, six load-balancing policies, the c-ares, native,
// sockaddr and fake resolvers, the HTTP proxy mapper, client-only filters. Its
// calls keep all of that code (and c-ares, re2, upb's JSON parsing of service
// configs) in a static link: --gc-sections cannot drop what a live function
// calls. The agent is a gRPC server only, serving connections handed to it as
// fds (ServeOnConnectedFd): it never resolves a name, picks a backend or opens a
// client channel. Defining BuildCoreConfiguration here keeps the archive member
// that holds gRPC's definition (grpc_plugin_registry.cc.o, nothing else in it)
// out of the link, and with it everything only that list reached.
//
// Same behaviour for the server: every registration that adds a filter to a
// server channel stack, a channel argument preconditioner or the resource quota
// is kept, in gRPC's own order (the order decides the filters' order within a
// stack). The server stack's filters are checked by
// tests/host/static_agent_grpc_check.sh (GRPC_TRACE=channel_stack).
//
// Tied to the gRPC release whose ABI is named below (Debian's 1.51): the
// functions are gRPC internals without installed headers, so they are declared
// here by their symbol names, on an opaque builder pointer. Another release
// fails to link (a missing symbol) or links gRPC's own list twice (a duplicate
// definition): static_agent.cmake only compiles this file for 1.51.
//
// grpc_init() also calls grpc_resolver_dns_ares_init/_shutdown directly (they
// initialise c-ares and make it the DNS resolver); defined here as no-ops, the
// member that holds them (and c-ares) stays out too. gRPC's native resolver
// remains the default one; the server never resolves a name.

namespace uvmshim::agent::vm::grpc_abi {

// grpc_core::CoreConfiguration::Builder*, never dereferenced here.
using Builder = void*;

#define UVMSHIM_GRPC_REGISTRATION(name, symbol) void name(Builder builder) __asm__(symbol)

UVMSHIM_GRPC_REGISTRATION(RegisterEventEngineChannelArgPreconditioning,
                          "_ZN17grpc_event_engine12experimental44RegisterEventEngineChannelArgPreconditioningEPN9grpc_core17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(SecurityRegisterHandshakerFactories,
                          "_ZN9grpc_core35SecurityRegisterHandshakerFactoriesEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterChannelIdleFilters,
                          "_ZN9grpc_core26RegisterChannelIdleFiltersEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterHttpFilters, "_ZN9grpc_core19RegisterHttpFiltersEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterDeadlineFilter,
                          "_ZN9grpc_core22RegisterDeadlineFilterEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterMessageSizeFilter,
                          "_ZN9grpc_core25RegisterMessageSizeFilterEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterResourceQuota, "_ZN9grpc_core21RegisterResourceQuotaEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterSecurityFilters,
                          "_ZN9grpc_core23RegisterSecurityFiltersEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterExtraFilters, "_ZN9grpc_core20RegisterExtraFiltersEPNS_17CoreConfiguration7BuilderE");
UVMSHIM_GRPC_REGISTRATION(RegisterBuiltins, "_ZN9grpc_core16RegisterBuiltinsEPNS_17CoreConfiguration7BuilderE");

#undef UVMSHIM_GRPC_REGISTRATION

void BuildCoreConfiguration(Builder builder) __asm__("_ZN9grpc_core22BuildCoreConfigurationEPNS_17CoreConfiguration7BuilderE");
void AresDnsResolverInit() __asm__("_Z27grpc_resolver_dns_ares_initv");
void AresDnsResolverShutdown() __asm__("_Z31grpc_resolver_dns_ares_shutdownv");

// gRPC 1.51's list (src/core/plugin_registry/grpc_plugin_registry.cc) minus
// the client side: the HTTP CONNECT and TCP connect handshakers, the
// load-balancing policies (priority, outlier detection, weighted target, pick
// first, round robin, ring hash, grpclb, rls), the client channel, the client
// authority, service config and fault injection filters, the resolvers and
// the HTTP proxy mapper. Each kept call registers server-side parts too.
void BuildCoreConfiguration(Builder builder) {
  RegisterEventEngineChannelArgPreconditioning(builder);
  SecurityRegisterHandshakerFactories(builder);  // server handshakes (a listening port)
  RegisterChannelIdleFilters(builder);           // the server's max_age filter
  RegisterHttpFilters(builder);                  // http-server, compression
  RegisterDeadlineFilter(builder);               // the server's deadline filter
  RegisterMessageSizeFilter(builder);            // our 16 MiB message limits
  RegisterResourceQuota(builder);
  RegisterSecurityFilters(builder);              // server-auth (insecure credentials' auth context)
  RegisterExtraFilters(builder);
  RegisterBuiltins(builder);                     // server top, connected channel
}

void AresDnsResolverInit() {}
void AresDnsResolverShutdown() {}

}  // namespace uvmshim::agent::vm::grpc_abi
