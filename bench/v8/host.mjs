// A small proxy-wasm host on Node's V8, for measuring a module in the engine Envoy embeds. Run it as Envoy runs V8:
//
//	node --no-liftoff bench/v8/host.mjs spec.json
//
// spec.json (written by bench's TestV8) names the guests, their plugin configuration and one stream's headers; the
// host runs each guest's start-up as proxy-wasm-cpp-host does, then streams in rounds with the guests interleaved,
// and prints JSON: per guest, the headers the last stream left and the microseconds per stream of every round.
//
// The host functions follow proxy-wasm-cpp-host at c4d7bb0 (the host of Envoy 1.33 through 1.37), src/exports.cc,
// for the calls the modules here import, including its WASI profile: poll_oneoff answers ENOSYS and writes nothing,
// fd_read and fd_fdstat_set_flags answer ENOSYS, no files, no arguments. Like its V8 binding (src/v8/v8.cc), a host
// function called while the host restricts callbacks traps the VM with "restricted_callback": during _initialize
// (WasmBase::startVm's list) and while the host runs the module's allocator (WasmBase::allocMemory's list:
// proxy_log, fd_write and clock_time_get only). Header maps follow Envoy's for what these modules do with them:
// lowercase names, pseudo-headers first, one entry per add, replace = remove all then add, get = first entry.

import { readFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';

// WasmResult (proxy-wasm-cpp-host include/proxy-wasm/word.h) and WASI errno values.
const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, INVALID_MEMORY_ACCESS = 6;
const WASI_SUCCESS = 0, WASI_EBADF = 8, WASI_EFAULT = 21, WASI_EINVAL = 28, WASI_ENOENT = 44, WASI_ENOSYS = 52,
  WASI_ENOTSUP = 58;
const RANDOM_GET_MAX = 64 * 1024; // PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES

const WASI = 'wasi_snapshot_preview1';

// WasmBase::startVm (src/wasm.cc): what _initialize may call.
const startVmAllowedC4d7bb0 = new Set([
  'env.proxy_log',
  `${WASI}.fd_write`, `${WASI}.args_sizes_get`, `${WASI}.args_get`, `${WASI}.environ_sizes_get`,
  `${WASI}.environ_get`, `${WASI}.fd_prestat_get`, `${WASI}.fd_prestat_dir_name`, `${WASI}.clock_time_get`,
  `${WASI}.random_get`, `${WASI}.fd_fdstat_get`, `${WASI}.fd_fdstat_set_flags`,
]);
// WasmBase::allocMemory (include/proxy-wasm/wasm.h): what proxy_on_memory_allocate may call.
const allocAllowedC4d7bb0 = new Set(['env.proxy_log', `${WASI}.fd_write`, `${WASI}.clock_time_get`]);

// Profiles: the WASI answers and restrictions of one proxy-wasm-cpp-host version. c4d7bb0 is what Envoy 1.33–1.37
// ship; 94091cd (April 2026) answers poll_oneoff with nevents = 0 and success, and lets both startVm and the
// allocator call it (the Go runtime sleeps through it when a GC starts there).
export const profiles = {
  c4d7bb0: { pollOneoff: 'enosys', startVm: startVmAllowedC4d7bb0, alloc: allocAllowedC4d7bb0 },
  '94091cd': {
    pollOneoff: 'none-ready',
    startVm: new Set([...startVmAllowedC4d7bb0, `${WASI}.poll_oneoff`]),
    alloc: new Set([...allocAllowedC4d7bb0, `${WASI}.poll_oneoff`]),
  },
};

// Header map types (proxy-wasm ABI) this host keeps per stream.
const REQUEST_HEADERS = 0, RESPONSE_HEADERS = 2;
// Buffer types.
const VM_CONFIGURATION = 6, PLUGIN_CONFIGURATION = 7;

class RestrictedCallback extends Error {}

export class Host {
  constructor(module, pluginConfig, logs, profile) {
    this.profile = profile;
    this.pluginConfig = Buffer.from(pluginConfig, 'latin1');
    this.logs = logs;
    this.restricted = null; // null, or the set of allowed imports
    this.metrics = new Map(); // id -> {name, value}
    this.metricIds = new Map();
    this.contexts = new Set();
    this.current = 0; // the context of the running callback
    this.effective = 0;
    this.stream = null;
    const imports = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      const fn = this.hostFunction(imp.module, imp.name);
      const key = `${imp.module}.${imp.name}`;
      // Fixed parameters rather than a rest array: no allocation per call. No import here takes more than nine.
      (imports[imp.module] ??= {})[imp.name] = (a, b, c, d, e, f, g, h, i) => {
        if (this.restricted !== null && !this.restricted.has(key)) {
          throw new RestrictedCallback(`restricted_callback: ${key}`);
        }
        return fn(a, b, c, d, e, f, g, h, i);
      };
    }
    this.instance = new WebAssembly.Instance(module, imports);
    this.exports = this.instance.exports;
    this.memory = this.exports.memory;
    this.buf = null;
    this.view = null;
  }

  // mem returns a Buffer and a DataView over the current linear memory. When the guest grows its memory, the old
  // ArrayBuffer is detached and views of it read as empty: that is when new ones are made.
  mem() {
    if (this.buf === null || this.buf.length === 0) {
      this.buf = Buffer.from(this.memory.buffer);
      this.view = new DataView(this.memory.buffer);
    }
    return this.buf;
  }

  inBounds(ptr, size) { return ptr + size <= this.mem().length; }

  read(ptr, size) { return this.inBounds(ptr, size) ? this.mem().latin1Slice(ptr, ptr + size) : null; }

  setU32(ptr, v) {
    if (!this.inBounds(ptr, 4)) return false;
    this.view.setUint32(ptr, v, true);
    return true;
  }

  // allocMemory is WasmBase::allocMemory: the module's allocator, with callbacks restricted while it runs.
  allocMemory(size) {
    const saved = this.restricted;
    this.restricted = this.profile.alloc;
    let ptr;
    try {
      ptr = this.exports.proxy_on_memory_allocate(size);
    } finally {
      this.restricted = saved;
    }
    if (ptr === 0 || !this.inBounds(ptr, size)) return 0;
    return ptr;
  }

  // copyToPointerSize is WasmBase::copyToPointerSize: nothing is allocated for an empty value.
  copyToPointerSize(s, ptrPtr, sizePtr) {
    let ptr = 0;
    if (s.length > 0) {
      ptr = this.allocMemory(s.length);
      if (ptr === 0) return false;
      this.mem().latin1Write(s, ptr, s.length);
    }
    return this.setU32(ptrPtr, ptr) && this.setU32(sizePtr, s.length);
  }

  headerMap(type) {
    const s = this.stream;
    if (s === null) return null;
    if (type === REQUEST_HEADERS) return s.reqMutable ? s.req : null;
    if (type === RESPONSE_HEADERS) return s.respMutable ? s.resp : null;
    return null;
  }

  hostFunction(module, name) {
    const fn = module === WASI ? this.wasi(name) : module === 'env' ? this.proxy(name) : undefined;
    if (fn === undefined) {
      return () => { throw new Error(`v8 host: ${module}.${name} is not implemented`); };
    }
    return fn;
  }

  proxy(name) {
    switch (name) {
      case 'proxy_log':
        return (level, ptr, size) => {
          const msg = this.read(ptr, size);
          if (msg === null) return INVALID_MEMORY_ACCESS;
          this.logs.push([level, msg]);
          return OK;
        };
      case 'proxy_set_effective_context':
        return (id) => {
          if (!this.contexts.has(id)) return BAD_ARGUMENT;
          this.effective = id;
          return OK;
        };
      case 'proxy_get_buffer_bytes':
        return (type, start, length, ptrPtr, sizePtr) => {
          let b;
          if (type === PLUGIN_CONFIGURATION) b = this.pluginConfig;
          else if (type === VM_CONFIGURATION) b = Buffer.alloc(0);
          else return NOT_FOUND;
          if (start > start + length) return BAD_ARGUMENT;
          if (start > b.length) length = 0;
          else if (start + length > b.length) length = b.length - start;
          return this.copyToPointerSize(b.latin1Slice(start, start + length), ptrPtr, sizePtr)
            ? OK : INVALID_MEMORY_ACCESS;
        };
      case 'proxy_get_header_map_pairs':
        return (type, ptrPtr, sizePtr) => {
          const m = this.headerMap(type);
          if (m === null) return BAD_ARGUMENT;
          if (m.length === 0) return this.copyToPointerSize('', ptrPtr, sizePtr) ? OK : INVALID_MEMORY_ACCESS;
          // A map as the stream received it keeps its serialisation from the spec (see fresh): one copy into the
          // guest, as Envoy's marshalPairs makes.
          const enc = m.encoded ?? encodePairs(m);
          const ptr = this.allocMemory(enc.length);
          if (ptr === 0) return INVALID_MEMORY_ACCESS;
          this.mem().set(enc, ptr);
          return this.setU32(ptrPtr, ptr) && this.setU32(sizePtr, enc.length) ? OK : INVALID_MEMORY_ACCESS;
        };
      case 'proxy_get_header_map_value':
        return (type, keyPtr, keySize, ptrPtr, sizePtr) => {
          const key = this.read(keyPtr, keySize);
          if (key === null) return INVALID_MEMORY_ACCESS;
          const m = this.headerMap(type);
          if (m === null) return BAD_ARGUMENT;
          const name = key.toLowerCase();
          const e = m.find((kv) => kv[0] === name);
          if (e === undefined) return NOT_FOUND;
          return this.copyToPointerSize(e[1], ptrPtr, sizePtr) ? OK : INVALID_MEMORY_ACCESS;
        };
      case 'proxy_add_header_map_value':
        return (type, keyPtr, keySize, valuePtr, valueSize) => {
          const key = this.read(keyPtr, keySize), value = this.read(valuePtr, valueSize);
          if (key === null || value === null) return INVALID_MEMORY_ACCESS;
          const m = this.headerMap(type);
          if (m === null) return BAD_ARGUMENT;
          addHeader(m, key.toLowerCase(), value);
          return OK;
        };
      case 'proxy_replace_header_map_value':
        return (type, keyPtr, keySize, valuePtr, valueSize) => {
          const key = this.read(keyPtr, keySize), value = this.read(valuePtr, valueSize);
          if (key === null || value === null) return INVALID_MEMORY_ACCESS;
          const m = this.headerMap(type);
          if (m === null) return BAD_ARGUMENT;
          const name = key.toLowerCase();
          removeHeader(m, name);
          addHeader(m, name, value);
          return OK;
        };
      case 'proxy_remove_header_map_value':
        return (type, keyPtr, keySize) => {
          const key = this.read(keyPtr, keySize);
          if (key === null) return INVALID_MEMORY_ACCESS;
          const m = this.headerMap(type);
          if (m === null) return BAD_ARGUMENT;
          removeHeader(m, key.toLowerCase());
          return OK;
        };
      case 'proxy_get_property':
        return (pathPtr, pathSize, ptrPtr, sizePtr) => {
          const path = this.read(pathPtr, pathSize);
          if (path === null) return INVALID_MEMORY_ACCESS;
          // The one property these modules read; any other is not found, as Envoy answers unknown paths.
          if (path !== 'upstream\0address' || this.stream === null || this.stream.upstream === '') return NOT_FOUND;
          return this.copyToPointerSize(this.stream.upstream, ptrPtr, sizePtr) ? OK : INVALID_MEMORY_ACCESS;
        };
      case 'proxy_define_metric':
        return (type, namePtr, nameSize, idPtr) => {
          const name = this.read(namePtr, nameSize);
          if (name === null) return INVALID_MEMORY_ACCESS;
          if (type > 2) return BAD_ARGUMENT;
          let id = this.metricIds.get(name);
          if (id === undefined) {
            id = (this.metricIds.size << 2) | type; // the type in the low two bits, as Envoy numbers metrics
            this.metricIds.set(name, id);
            this.metrics.set(id, { name, value: 0n });
          }
          return this.setU32(idPtr, id) ? OK : INVALID_MEMORY_ACCESS;
        };
      case 'proxy_increment_metric':
        return (id, offset) => {
          const m = this.metrics.get(id);
          if (m === undefined) return NOT_FOUND;
          m.value += offset;
          return OK;
        };
    }
    return undefined;
  }

  // wasi is proxy-wasm-cpp-host c4d7bb0's src/exports.cc, wasi_unstable_*.
  wasi(name) {
    switch (name) {
      case 'fd_write':
        return (fd, iovs, iovsLen, nwrittenPtr) => {
          if (fd !== 1 && fd !== 2) return WASI_EBADF;
          let s = '';
          for (let i = 0; i < iovsLen; i++) {
            if (!this.inBounds(iovs + i * 8, 8)) return WASI_EFAULT;
            const ptr = this.view.getUint32(iovs + i * 8, true), len = this.view.getUint32(iovs + i * 8 + 4, true);
            if (len !== 0) {
              const part = this.read(ptr, len);
              if (part === null) return WASI_EFAULT;
              s += part;
            }
          }
          if (s.length > 0) this.logs.push([fd === 1 ? 2 : 4, s.endsWith('\n') ? s.slice(0, -1) : s]);
          return this.setU32(nwrittenPtr, s.length) ? WASI_SUCCESS : WASI_EFAULT;
        };
      case 'poll_oneoff':
        if (this.profile.pollOneoff === 'none-ready') {
          return (_in, _out, _n, neventsPtr) => (this.setU32(neventsPtr, 0) ? WASI_SUCCESS : WASI_EFAULT);
        }
        return () => WASI_ENOSYS;
      case 'fd_read':
      case 'fd_fdstat_set_flags':
      case 'fd_prestat_dir_name':
        return () => WASI_ENOSYS;
      case 'fd_seek':
      case 'fd_close':
        // Envoy logs the call as an error of the context and answers success.
        return () => { this.logs.push([4, `wasi_unstable ${name}`]); return WASI_SUCCESS; };
      case 'fd_fdstat_get':
        return (fd, statPtr) => {
          if (fd !== 1 && fd !== 2) return WASI_EBADF;
          if (!this.inBounds(statPtr, 24)) return WASI_SUCCESS; // setMemory's failure is ignored there
          this.mem().fill(0, statPtr, statPtr + 24);
          this.view.setBigUint64(statPtr + 8, 64n, true); // fs_rights_base = FD_WRITE
          return WASI_SUCCESS;
        };
      case 'fd_prestat_get':
        return () => WASI_EBADF;
      case 'path_open':
        return () => WASI_ENOENT;
      case 'environ_get':
        return () => WASI_SUCCESS; // no environment: nothing to write
      case 'environ_sizes_get':
      case 'args_sizes_get':
        return (countPtr, sizePtr) => (this.setU32(countPtr, 0) && this.setU32(sizePtr, 0)) ? WASI_SUCCESS : WASI_EFAULT;
      case 'args_get':
        return () => WASI_SUCCESS;
      case 'clock_time_get':
        return (id, _precision, resultPtr) => {
          let t;
          if (id === 0) t = BigInt(Date.now()) * 1000000n;
          else if (id === 1) t = process.hrtime.bigint();
          else return WASI_ENOTSUP;
          if (!this.inBounds(resultPtr, 8)) return WASI_EFAULT;
          this.view.setBigUint64(resultPtr, t, true);
          return WASI_SUCCESS;
        };
      case 'random_get':
        return (ptr, len) => {
          if (len > RANDOM_GET_MAX) return WASI_EINVAL;
          if (len === 0) return WASI_SUCCESS;
          if (!this.inBounds(ptr, len)) return WASI_EFAULT;
          randomFillSync(this.mem(), ptr, len);
          return WASI_SUCCESS;
        };
      case 'sched_yield':
        return () => WASI_SUCCESS;
      case 'proc_exit':
        return () => { throw new Error('wasi_unstable proc_exit'); };
    }
    return undefined;
  }

  // start runs WasmBase::startVm (_initialize with callbacks restricted), then the root context's creation,
  // proxy_on_vm_start and proxy_on_configure, and refuses a plugin that rejects either.
  start() {
    this.restricted = this.profile.startVm;
    try {
      this.exports._initialize?.();
    } finally {
      this.restricted = null;
    }
    this.root = 1;
    this.nextId = 2;
    this.contexts.add(this.root);
    this.call(this.root, () => this.exports.proxy_on_context_create(this.root, 0));
    if (!this.call(this.root, () => this.exports.proxy_on_vm_start(this.root, 0))) {
      throw new Error('v8 host: proxy_on_vm_start returned false');
    }
    if (!this.call(this.root, () => this.exports.proxy_on_configure(this.root, this.pluginConfig.length))) {
      throw new Error(`v8 host: proxy_on_configure returned false: ${JSON.stringify(this.logs)}`);
    }
  }

  call(id, f) {
    this.current = this.effective = id;
    try {
      return f();
    } finally {
      this.current = this.effective = 0;
    }
  }

  // runStream is one stream as Envoy drives it: context creation, request headers (end of stream), the upstream
  // chosen, response headers, then the access log, done and delete. It returns the stream's final headers.
  runStream(req, resp, upstream) {
    const id = this.nextId++;
    const s = { req: fresh(req), resp: null, upstream: '', reqMutable: false, respMutable: false };
    this.stream = s;
    this.contexts.add(id);
    const e = this.exports;
    this.call(id, () => e.proxy_on_context_create(id, this.root));
    s.reqMutable = true;
    this.call(id, () => e.proxy_on_request_headers(id, s.req.length, 1));
    s.reqMutable = false;
    s.upstream = upstream;
    s.resp = fresh(resp);
    s.respMutable = true;
    this.call(id, () => e.proxy_on_response_headers(id, s.resp.length, 0));
    s.respMutable = false;
    this.call(id, () => e.proxy_on_log(id));
    this.call(id, () => e.proxy_on_done(id));
    this.call(id, () => e.proxy_on_delete(id));
    this.contexts.delete(id);
    this.stream = null;
    return { request: s.req, response: s.resp };
  }
}

// fresh copies a stream's headers from the spec, with the spec's serialisation (see encodePairs) until changed.
function fresh(headers) {
  const m = headers.map((kv) => [kv[0], kv[1]]);
  m.encoded = headers.encoded ??= encodePairs(headers);
  return m;
}

// encodePairs serialises a header map in proxy-wasm's pairs format (proxy-wasm-cpp-host PairsUtil::marshalPairs).
function encodePairs(m) {
  let size = 4;
  for (const [k, v] of m) size += 8 + k.length + 1 + v.length + 1;
  const b = Buffer.alloc(size);
  b.writeUInt32LE(m.length, 0);
  let sizes = 4, data = 4 + 8 * m.length;
  for (const [k, v] of m) {
    b.writeUInt32LE(k.length, sizes);
    b.writeUInt32LE(v.length, sizes + 4);
    sizes += 8;
    data += b.latin1Write(k, data) + 1;
    data += b.latin1Write(v, data) + 1;
  }
  return b;
}

function addHeader(m, name, value) {
  m.encoded = undefined;
  if (name.startsWith(':')) {
    let i = 0;
    while (i < m.length && m[i][0].startsWith(':')) i++;
    m.splice(i, 0, [name, value]);
  } else {
    m.push([name, value]);
  }
}

function removeHeader(m, name) {
  m.encoded = undefined;
  let j = 0;
  for (let i = 0; i < m.length; i++) {
    if (m[i][0] !== name) m[j++] = m[i];
  }
  m.length = j;
}

const allLogs = [];
let running = ''; // the guest whose stream or start-up is running

function main() {
  const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const guests = spec.guests.map((g) => {
    const logs = [];
    allLogs.push([g.name, logs]);
    running = g.name;
    const profile = profiles[spec.profile ?? 'c4d7bb0'];
    if (profile === undefined) throw new Error(`unknown profile ${spec.profile}`);
    const host = new Host(new WebAssembly.Module(readFileSync(g.wasm)), g.config ?? '', logs, profile);
    host.start();
    return { spec: g, host, logs, us: [], cpuUs: [], headers: null };
  });
  const stream = (g) => (running = g.spec.name, g.host.runStream(g.spec.request, g.spec.response, g.spec.upstream ?? ''));
  for (const g of guests) {
    for (let i = 0; i < spec.warmup; i++) stream(g);
  }
  for (let r = 0; r < spec.rounds; r++) {
    for (const g of guests) {
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < spec.streams; i++) stream(g);
      const t1 = process.hrtime.bigint();
      const cpu = process.cpuUsage(cpu0);
      g.us.push(Number(t1 - t0) / 1000 / spec.streams);
      g.cpuUs.push((cpu.user + cpu.system) / spec.streams);
    }
  }
  for (const g of guests) g.headers = stream(g);
  const out = {
    profile: spec.profile ?? 'c4d7bb0',
    node: process.version,
    v8: process.versions.v8,
    flags: process.execArgv,
    guests: guests.map((g) => ({
      name: g.spec.name,
      request: g.headers.request,
      response: g.headers.response,
      us_per_stream: g.us,
      cpu_us_per_stream: g.cpuUs,
      metrics: Object.fromEntries([...g.host.metrics.values()].map((m) => [m.name, Number(m.value)])),
      logs: g.logs.filter(([level]) => level >= 3).map(([, msg]) => msg),
    })),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    main();
  } catch (err) {
    let said = '';
    for (const [name, logs] of allLogs) {
      const text = logs.map(([, msg]) => msg).join('');
      if (text !== '') process.stderr.write(`${name}: ${text}\n`);
      // The Go runtime writes "fatal error: " and the reason in two writes.
      const at = logs.findIndex(([, msg]) => msg.startsWith('fatal error:'));
      if (name === running && at >= 0) said = (logs[at][1] + (logs[at + 1]?.[1] ?? '')).trim();
    }
    process.stderr.write(`${err.stack ?? err}\n`);
    // The last line sums it up for the report.
    process.stderr.write(`v8 host: guest ${running} failed: ${err.message}${said ? ` (the guest said "${said}")` : ''}\n`);
    process.exit(1);
  }
}
