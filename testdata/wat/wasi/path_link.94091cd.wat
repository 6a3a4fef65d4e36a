;; path_link (94091cd): ENOTSUP (cpp-host declares one path length fewer than WASI).
;; Each check traps (unreachable) when the answer differs; the host test runs this guest and expects none.
(module
  (import "wasi_snapshot_preview1" "path_link" (func $path_link (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 1024: constant data; 4096 up: scratch, filled with 0xAA before each call so that what a call leaves alone shows.
  (func $eq (param $got i32) (param $want i32) (if (i32.ne (local.get $got) (local.get $want)) (then unreachable)))
  (func $eq64 (param $got i64) (param $want i64) (if (i64.ne (local.get $got) (local.get $want)) (then unreachable)))
  (func $fill (memory.fill (i32.const 4096) (i32.const 0xAA) (i32.const 256)))
  ;; $untouched: the 8 bytes at $p still hold the fill.
  (func $untouched (param $p i32) (call $eq64 (i64.load (local.get $p)) (i64.const 0xAAAAAAAAAAAAAAAA)))
  (func (export "malloc") (param i32) (result i32) (i32.const 8192))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
  (data (i32.const 1024) "x")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $fill)
    (call $eq (call $path_link (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 3) (i32.const 1024)) (i32.const 58))
    (i32.const 0)))
