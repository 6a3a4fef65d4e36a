// Package host runs a Proxy-Wasm HTTP filter (ABI 0.2.0/0.2.1, such as a Go plugin built with
// GOOS=wasip1 -buildmode=c-shared on github.com/proxy-wasm/proxy-wasm-go-sdk) on wazero, behaving as Envoy 1.33
// does, so that a plugin that works here works in Envoy.
//
// # Shape
//
// New compiles the module once (wazero's compiler, optionally with an on-disk compilation cache), checks it the way
// Envoy loads it, and creates Options.PoolSize instances, each a module instance with its plugin (root) context,
// like the VM of one Envoy worker thread. All are created at start, so that a bad module or configuration fails
// New and no stream ever waits for an instantiation.
//
// As in Envoy, an instance carries any number of streams at once, one context each. NewStream pins a stream to
// the live instance with the fewest open streams (ties taken in turn), for the stream's whole life, and gives it a
// context id unique in that instance. A wazero module is not safe for concurrent calls, just as an Envoy worker is
// single-threaded, so each instance has a mutex that a stream holds for the duration of one callback (and of the
// small accessors such as ResponseHeaders), never between callbacks. A long-poll that the upstream holds for half
// a minute therefore costs its instance nothing while it waits, and PoolSize bounds the plugin calls running in
// parallel, not the streams in flight (Options.MaxStreams can bound those).
//
// Each stream's host-side state (header maps, bodies, properties, upstream address, local response) lives in its
// own object, recycled through a sync.Pool. Entering a callback, the stream installs its state as the instance's
// current one; host functions act on it, or on the context chosen with proxy_set_effective_context, which may be
// any live stream of the same instance, looked up in the instance's table of contexts.
//
// The host functions ("env" module) are registered once per runtime and find the calling instance through the
// context of the call, which each instance builds once; exported functions are looked up once per instance and
// called with CallWithStack on a reused stack, and header maps are serialized straight into guest memory, so the
// per-stream path allocates almost nothing on the host side.
//
// # Order of calls
//
// Start-up follows proxy-wasm-cpp-host: _initialize (and main or __main_void when exported), then
// proxy_on_context_create(root, 0), proxy_on_vm_start(root, vm_configuration_size) and
// proxy_on_configure(root, plugin_configuration_size); a false from either of the last two fails New. Note that
// the root context is created before proxy_on_vm_start, as Envoy does. A stream gets proxy_on_context_create(id,
// root) at its first callback, then its HTTP callbacks, and at Close proxy_on_log (Envoy's access log), then
// proxy_on_done and proxy_on_delete. Host.Close ends each root context with proxy_on_done and proxy_on_delete.
//
// # Envoy fidelity
//
//   - Load-time checks and their wording: a proxy_abi_version_* marker ("Missing or unknown Proxy-Wasm ABI
//     version"), an allocator ("Wasm module is missing malloc function."), callback signatures ("Bad function
//     signature for: ..."), and imports within an Envoy import list ("Failed to load Wasm module due to a missing
//     import: wasi_snapshot_preview1.X"), including the env functions Envoy registers only for some ABI versions.
//     Inspect and CheckCompatibility expose the same checks for tools.
//   - Header maps keep Envoy's HeaderMapImpl semantics; see headers.go: lowercase names, pseudo-headers first,
//     one entry per repeated header (set-cookie), inline headers joined with ",", replace moves the header to the
//     end, get returns the first value, "host" aliases ":authority" in requests.
//   - Availability is Envoy's: the request headers can be read and changed in proxy_on_request_headers and are gone
//     (BadArgument) once it returns Continue; in proxy_on_log both header maps are readable and none writable;
//     request.* properties derived from headers are NotFound in the response phase; a body is reachable in its own
//     callback. Plugins that need request data when the response arrives must keep a copy, as in Envoy.
//   - Status codes follow proxy-wasm-cpp-host and Envoy's Context: InvalidMemoryAccess for pointers outside guest
//     memory (never a host panic), BadArgument for enums out of range and unavailable maps, NotFound for unknown
//     properties, metrics, queues and foreign functions. A malformed serialized map reads as empty, as in Envoy.
//   - Metrics are shared by all instances, like Envoy's stats; counters only grow (incrementing by zero or less is
//     a BadArgument, which the Go SDK turns into a panic); ids encode the type in their low two bits.
//   - Shared data and shared queues are shared by all instances of a Host (one vm_id), with Envoy's CAS rules.
//   - Callouts (HTTP, gRPC) fail as in Envoy without such a cluster: BadArgument, ParseFailure.
//   - WASI is Envoy's, not wazero's: wasi.go implements wasi_snapshot_preview1 as proxy-wasm-cpp-host's
//     src/exports.cc does at the commit of the Envoy profile (Options.Envoy, envoyprofile.go), status for status and
//     byte for byte. Under the default profile (Envoy 1.33 to 1.37, cpp-host c4d7bb0) poll_oneoff answers ENOSYS,
//     fd_read and fd_fdstat_set_flags ENOSYS, path_open ENOENT, fd_prestat_get EBADF, fd_fdstat_get succeeds for
//     stdout and stderr only, fd_seek, fd_close and proc_exit log at trace level and return success (proc_exit
//     does not end the module: the guest runs on), args are empty, random_get refuses more than 64 KiB, and the
//     clocks are realtime (Options.Now) and monotonic only. fd_write on stdout and stderr logs one record per call
//     (info and error level) with one trailing newline removed.
//   - Restricted callbacks are cpp-host's (restricted.go): during _initialize and main, and during the allocator a
//     host function calls, only the profile's listed imports may run; any other traps the VM ("restricted_callback")
//     and fails the running callback.
//
// # Failure policy
//
// A plugin fails when a callback traps (a Go panic ends in an unreachable instruction), exits (proc_exit), or its
// allocator fails. The failed instance is closed, never reused, and replaced in the background, so the pool keeps
// its size; the failure is logged once and counted in Stats. The stream that hit the failure gets the
// FailurePolicy: FailClosed and FailReload answer 503 (Envoy's failStream: no body, details "wasm_fail_stream"),
// FailOpen lets the stream through with its headers as they were before the failing callback. The other streams
// pinned to the failed instance lost their contexts with it: each gets the same answer at its next callback. The
// streams' later callbacks are skipped, and their Close does not touch the dead instance. When a replacement
// cannot be instantiated and no instance is left, NewStream returns the instantiation error; each later NewStream
// tries again.
//
// Envoy keeps a crashed VM failed under FAIL_CLOSED and FAIL_OPEN (every later request on that worker gets 503, or
// skips the plugin, until the configuration changes) and only FAIL_RELOAD brings a new VM. This host replaces the
// instance under every policy, so a single bad request cannot take out a share of the pool; the policy decides what
// the failed instance's streams get, and FailClosed and FailReload differ only in name. FailOpen also undoes the failing
// callback's header changes, where Envoy would keep whatever the plugin changed before it failed.
//
// # Platforms
//
// Options.Platform applies the stricter rules of a proxy that embeds proxy-wasm differently from Envoy, on top of
// everything above. GCPServiceExtensions is Google Cloud Service Extensions: timers, metrics, shared data, shared
// queues and callouts answer Unimplemented; get_property answers only the request attributes the load balancer
// forwards; an instance's memory stops at 16 MiB (reserved up front, so that growing it costs no copy); each HTTP
// callback may use 1 ms of the calling thread's CPU time, checked when it returns (the guest is not interrupted);
// the streams open at once are bounded at 1,000 per instance; the module and its configuration must fit the quota;
// and a failure is answered 500 instead of Envoy's 503.
//
// # What is not modelled
//
// Differences from Envoy's Wasm host that remain: the wasi_unstable module and env.pthread_equal and
// env.emscripten_notify_memory_growth, which cpp-host also registers, are not offered (a module importing them is
// refused here and would load in Envoy); the WASI environment is sorted by name where cpp-host iterates an unordered
// map; the monotonic clock counts from the host's start; Envoy turns a trap inside the allocator into a failed
// allocation and a failed VM while the outer callback runs on, where this host fails the outer callback at once
// (the stream gets the same failure policy either way).
//
// Trailers, HTTP and gRPC callouts, foreign functions and asynchronous resumption (a paused stream is reported in
// Verdict.Paused). Ticks (proxy_on_tick) and shared-queue notifications (proxy_on_queue_ready) are delivered when
// a stream of the instance closes, rather than from an event loop.
package host
