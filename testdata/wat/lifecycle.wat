;; lifecycle: logs the name of every callback it receives with proxy_log (at info), so a test can read the exact
;; order in which the host calls them, including proxy_on_done and proxy_on_delete, which the Go SDK hides.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "_initialize")               ;; 0, 11
  (data (i32.const 16) "context_create root")      ;; 16, 19
  (data (i32.const 48) "context_create stream")    ;; 48, 21
  (data (i32.const 80) "vm_start")                 ;; 80, 8
  (data (i32.const 96) "configure")                ;; 96, 9
  (data (i32.const 112) "request_headers")         ;; 112, 15
  (data (i32.const 128) "request_body")            ;; 128, 12
  (data (i32.const 144) "response_headers")        ;; 144, 16
  (data (i32.const 176) "response_body")           ;; 176, 13
  (data (i32.const 192) "log")                     ;; 192, 3
  (data (i32.const 208) "done")                    ;; 208, 4
  (data (i32.const 224) "delete")                  ;; 224, 6
  (func $say (param $at i32) (param $len i32)
    (drop (call $log (i32.const 2) (local.get $at) (local.get $len))))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize") (call $say (i32.const 0) (i32.const 11)))
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (if (i32.eqz (local.get $parent))
      (then (call $say (i32.const 16) (i32.const 19)))
      (else (call $say (i32.const 48) (i32.const 21)))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $say (i32.const 80) (i32.const 8)) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $say (i32.const 96) (i32.const 9)) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $say (i32.const 112) (i32.const 15)) (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $say (i32.const 128) (i32.const 12)) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $say (i32.const 144) (i32.const 16)) (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (call $say (i32.const 176) (i32.const 13)) (i32.const 0))
  (func (export "proxy_on_log") (param i32) (call $say (i32.const 192) (i32.const 3)))
  (func (export "proxy_on_done") (param i32) (result i32)
    (call $say (i32.const 208) (i32.const 4)) (i32.const 1))
  (func (export "proxy_on_delete") (param i32) (call $say (i32.const 224) (i32.const 6))))
