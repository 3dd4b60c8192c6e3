//! The broker's Python ingest in process: records as the seed-era Python
//! client (PyPI `distlog` 0.1.dev0) sends them, each message through
//! [`distlogd::ingest::decode`], what an ingest worker does with every
//! message it takes off a socket (parse the JSON or pickle
//! `LogRecord.__dict__`, map it to a record, wrap it in a one-record batch,
//! validate that, route it). Throughput is in records (one per message).
//!
//! - `python_ingest/json/*`, `python_ingest/pickle/*`: the six messages
//!   below, in the encoding the topic names (`PLJ`, `PLP`);
//! - `*/embedded`: the embedded default (no filter runs);
//!   `*/three_rules`: three rules of one to two clauses on level, logger
//!   name, message text and an extra field.
//!
//! The messages are real: made by the pinned client's own `JSONFormatter`
//! and `PickleFormatter` (pickle protocol 3, as it sends) from the
//! `logging.LogRecord`s of a small checkout scenario: a plain record with
//! `extra` fields, a `distlog.task` with bound values, a record with `%`
//! args and `extra` in it, a subtask, a warning from another logger and a
//! `logger.exception` with its traceback. Clock, thread id, pid, host name
//! and file paths were fixed so the capture is reproducible; nothing else
//! was edited. 600 to 900 bytes each.
//!
//! Before timing, every message must decode to one record and the third
//! one's message, task key and `amount` field are checked; each timed run
//! counts the records it decoded and fails unless it is six per round, so
//! a rejecting build cannot look fast.
//!
//! `cargo bench -p distlogd --bench python_ingest -- --warm-up-time 1 --measurement-time 3`;
//! quick check: `cargo test -p distlogd --bench python_ingest`.
//!
//! For counting instructions (repeatable where timing is noisy), the
//! binary also runs a fixed number of rounds of one case without
//! criterion, in one function counted alone:
//! `PYTHON_INGEST_ROUNDS=1000 PYTHON_INGEST_CASE=pickle/embedded valgrind
//! --tool=callgrind --toggle-collect='*measured_rounds*' <bench binary>`
//! (cases: `json|pickle` / `embedded|three_rules`).

use criterion::{Criterion, Throughput};
use distlog_core::record::Value;
use distlogd::config::Config;
use distlogd::ingest::{decode, Decoded};
use distlogd::rules::RuleSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// The JSON messages (`PLJ`), as `JSONFormatter` made them.
const JSON: [&[u8]; 6] = [
    br#"{"name": "shop.checkout", "msg": "cart %s has %d items", "args": null, "levelname": "INFO", "levelno": 20, "pathname": "/srv/shop/checkout.py", "filename": "checkout.py", "module": "checkout", "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 32, "funcName": "scenario", "created": 1700000000.25, "msecs": 250.0, "relativeCreated": 1234.5, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": null, "cart_id": "c-991", "items": 3, "message": "cart c-991 has 3 items", "asctime": "2023-11-14 22:13:20,250", "hostname": "shop-7"}"#,
    br#"{"name": "root", "msg": "checkout %s", "args": null, "levelname": "INFO", "levelno": 20, "pathname": "/usr/lib/python3/dist-packages/distlog/logger/context.py", "filename": "context.py", "module": "context", "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 207, "funcName": "__enter__", "created": 1700000000.251, "msecs": 250.99992752075195, "relativeCreated": 1234.5, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": {"key": "0@1b4e28ba-2fa1-11d2-883f-0016d3cca427", "user": "alice", "order": 1234}, "message": "checkout o-1234", "asctime": "2023-11-14 22:13:20,250", "hostname": "shop-7"}"#,
    br#"{"name": "shop.checkout", "msg": "charged %s %.2f for order %d", "args": null, "levelname": "INFO", "levelno": 20, "pathname": "/srv/shop/checkout.py", "filename": "checkout.py", "module": "checkout", "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 34, "funcName": "scenario", "created": 1700000000.252, "msecs": 252.000093460083, "relativeCreated": 1234.5, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": {"key": "1@1b4e28ba-2fa1-11d2-883f-0016d3cca427", "user": "alice", "order": 1234}, "amount": 42.5, "currency": "EUR", "gateway": "stripe", "message": "charged EUR 42.50 for order 1234", "asctime": "2023-11-14 22:13:20,252", "hostname": "shop-7"}"#,
    br#"{"name": "root", "msg": "reserve stock", "args": null, "levelname": "INFO", "levelno": 20, "pathname": "/usr/lib/python3/dist-packages/distlog/logger/context.py", "filename": "context.py", "module": "context", "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 207, "funcName": "__enter__", "created": 1700000000.253, "msecs": 253.00002098083496, "relativeCreated": 1234.5, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": {"key": "0@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1", "sku": "A-17"}, "message": "reserve stock", "asctime": "2023-11-14 22:13:20,253", "hostname": "shop-7"}"#,
    br#"{"name": "shop.db", "msg": "slow query %s took %.1f ms", "args": null, "levelname": "WARNING", "levelno": 30, "pathname": "/srv/shop/checkout.py", "filename": "checkout.py", "module": "checkout", "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 36, "funcName": "scenario", "created": 1700000000.254, "msecs": 253.9999485015869, "relativeCreated": 1234.5, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": {"key": "1@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1", "sku": "A-17"}, "rows": 12, "table": "stock", "message": "slow query select_stock took 212.4 ms", "asctime": "2023-11-14 22:13:20,253", "hostname": "shop-7"}"#,
    br#"{"name": "shop.db", "msg": "stock row %s missing", "args": null, "levelname": "ERROR", "levelno": 40, "pathname": "/srv/shop/checkout.py", "filename": "checkout.py", "module": "checkout", "exc_info": null, "exc_text": "Traceback (most recent call last):\\n  File \"/srv/shop/checkout.py\", line 38, in scenario\\n    {}[\"A-17\"]\\n    ~~^^^^^^^^\\nKeyError: 'A-17'", "stack_info": null, "lineno": 40, "funcName": "scenario", "created": 1700000000.255, "msecs": 255.00011444091797, "relativeCreated": 1234.5, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": {"key": "2@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1", "sku": "A-17"}, "retry": true, "message": "stock row A-17 missing", "asctime": "2023-11-14 22:13:20,255", "hostname": "shop-7"}"#,
];
/// The same records pickled (`PLP`), as `PickleFormatter` made them.
const PICKLE: [&[u8]; 6] = [
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x0d\x00\x00\x00shop.checkoutq\x02X\x03\x00\x00\x00msgq\x03X\x14\x00\x00\x00cart %s has %d itemsq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x04\x00\x00\x00INFOq\x07X\x07\x00\x00\x00levelnoq\x08K\x14X\x08\x00\x00\x00pathnameq\x09X\x15\x00\x00\x00/srv/shop/checkout.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\x0b\x00\x00\x00checkout.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x08\x00\x00\x00checkoutq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K X\x08\x00\x00\x00funcNameq\x13X\x08\x00\x00\x00scenarioq\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x10\x00\x00X\x05\x00\x00\x00msecsq\x16G@o@\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x17G@\x93J\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1eNX\x07\x00\x00\x00cart_idq\x1fX\x05\x00\x00\x00c-991q X\x05\x00\x00\x00itemsq!K\x03X\x07\x00\x00\x00messageq\"X\x16\x00\x00\x00cart c-991 has 3 itemsq#X\x07\x00\x00\x00asctimeq$X\x17\x00\x00\x002023-11-14 22:13:20,250q%X\x08\x00\x00\x00hostnameq&X\x06\x00\x00\x00shop-7q'u.",
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x04\x00\x00\x00rootq\x02X\x03\x00\x00\x00msgq\x03X\x0b\x00\x00\x00checkout %sq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x04\x00\x00\x00INFOq\x07X\x07\x00\x00\x00levelnoq\x08K\x14X\x08\x00\x00\x00pathnameq\x09X8\x00\x00\x00/usr/lib/python3/dist-packages/distlog/logger/context.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\x0a\x00\x00\x00context.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x07\x00\x00\x00contextq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K\xcfX\x08\x00\x00\x00funcNameq\x13X\x09\x00\x00\x00__enter__q\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x10\x10bX\x05\x00\x00\x00msecsq\x16G@o_\xffh\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x17G@\x93J\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1e}q\x1f(X\x03\x00\x00\x00keyq X&\x00\x00\x000@1b4e28ba-2fa1-11d2-883f-0016d3cca427q!X\x04\x00\x00\x00userq\"X\x05\x00\x00\x00aliceq#X\x05\x00\x00\x00orderq$M\xd2\x04uX\x07\x00\x00\x00messageq%X\x0f\x00\x00\x00checkout o-1234q&X\x07\x00\x00\x00asctimeq'X\x17\x00\x00\x002023-11-14 22:13:20,250q(X\x08\x00\x00\x00hostnameq)X\x06\x00\x00\x00shop-7q*u.",
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x0d\x00\x00\x00shop.checkoutq\x02X\x03\x00\x00\x00msgq\x03X\x1c\x00\x00\x00charged %s %.2f for order %dq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x04\x00\x00\x00INFOq\x07X\x07\x00\x00\x00levelnoq\x08K\x14X\x08\x00\x00\x00pathnameq\x09X\x15\x00\x00\x00/srv/shop/checkout.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\x0b\x00\x00\x00checkout.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x08\x00\x00\x00checkoutq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K\"X\x08\x00\x00\x00funcNameq\x13X\x08\x00\x00\x00scenarioq\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x10 \xc5X\x05\x00\x00\x00msecsq\x16G@o\x80\x00\xc4\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x17G@\x93J\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1e}q\x1f(X\x03\x00\x00\x00keyq X&\x00\x00\x001@1b4e28ba-2fa1-11d2-883f-0016d3cca427q!X\x04\x00\x00\x00userq\"X\x05\x00\x00\x00aliceq#X\x05\x00\x00\x00orderq$M\xd2\x04uX\x06\x00\x00\x00amountq%G@E@\x00\x00\x00\x00\x00X\x08\x00\x00\x00currencyq&X\x03\x00\x00\x00EURq'X\x07\x00\x00\x00gatewayq(X\x06\x00\x00\x00stripeq)X\x07\x00\x00\x00messageq*X \x00\x00\x00charged EUR 42.50 for order 1234q+X\x07\x00\x00\x00asctimeq,X\x17\x00\x00\x002023-11-14 22:13:20,252q-X\x08\x00\x00\x00hostnameq.X\x06\x00\x00\x00shop-7q/u.",
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x04\x00\x00\x00rootq\x02X\x03\x00\x00\x00msgq\x03X\x0d\x00\x00\x00reserve stockq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x04\x00\x00\x00INFOq\x07X\x07\x00\x00\x00levelnoq\x08K\x14X\x08\x00\x00\x00pathnameq\x09X8\x00\x00\x00/usr/lib/python3/dist-packages/distlog/logger/context.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\x0a\x00\x00\x00context.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x07\x00\x00\x00contextq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K\xcfX\x08\x00\x00\x00funcNameq\x13X\x09\x00\x00\x00__enter__q\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x101'X\x05\x00\x00\x00msecsq\x16G@o\xa0\x00,\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x17G@\x93J\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1e}q\x1f(X\x03\x00\x00\x00keyq X(\x00\x00\x000@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1q!X\x03\x00\x00\x00skuq\"X\x04\x00\x00\x00A-17q#uX\x07\x00\x00\x00messageq$h\x04X\x07\x00\x00\x00asctimeq%X\x17\x00\x00\x002023-11-14 22:13:20,253q&X\x08\x00\x00\x00hostnameq'X\x06\x00\x00\x00shop-7q(u.",
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x07\x00\x00\x00shop.dbq\x02X\x03\x00\x00\x00msgq\x03X\x1a\x00\x00\x00slow query %s took %.1f msq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x07\x00\x00\x00WARNINGq\x07X\x07\x00\x00\x00levelnoq\x08K\x1eX\x08\x00\x00\x00pathnameq\x09X\x15\x00\x00\x00/srv/shop/checkout.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\x0b\x00\x00\x00checkout.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x08\x00\x00\x00checkoutq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K$X\x08\x00\x00\x00funcNameq\x13X\x08\x00\x00\x00scenarioq\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x10A\x89X\x05\x00\x00\x00msecsq\x16G@o\xbf\xff\x94\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x17G@\x93J\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1e}q\x1f(X\x03\x00\x00\x00keyq X(\x00\x00\x001@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1q!X\x03\x00\x00\x00skuq\"X\x04\x00\x00\x00A-17q#uX\x04\x00\x00\x00rowsq$K\x0cX\x05\x00\x00\x00tableq%X\x05\x00\x00\x00stockq&X\x07\x00\x00\x00messageq'X%\x00\x00\x00slow query select_stock took 212.4 msq(X\x07\x00\x00\x00asctimeq)X\x17\x00\x00\x002023-11-14 22:13:20,253q*X\x08\x00\x00\x00hostnameq+X\x06\x00\x00\x00shop-7q,u.",
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x07\x00\x00\x00shop.dbq\x02X\x03\x00\x00\x00msgq\x03X\x14\x00\x00\x00stock row %s missingq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00levelnameq\x06X\x05\x00\x00\x00ERRORq\x07X\x07\x00\x00\x00levelnoq\x08K(X\x08\x00\x00\x00pathnameq\x09X\x15\x00\x00\x00/srv/shop/checkout.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\x0b\x00\x00\x00checkout.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x08\x00\x00\x00checkoutq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10X\x8a\x00\x00\x00Traceback (most recent call last):\\n  File \"/srv/shop/checkout.py\", line 38, in scenario\\n    {}[\"A-17\"]\\n    ~~^^^^^^^^\\nKeyError: 'A-17'q\x11X\x0a\x00\x00\x00stack_infoq\x12NX\x06\x00\x00\x00linenoq\x13K(X\x08\x00\x00\x00funcNameq\x14X\x08\x00\x00\x00scenarioq\x15X\x07\x00\x00\x00createdq\x16GA\xd9T\xfc@\x10Q\xecX\x05\x00\x00\x00msecsq\x17G@o\xe0\x00\xf0\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\x18G@\x93J\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x19\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x1aX\x0a\x00\x00\x00MainThreadq\x1bX\x0b\x00\x00\x00processNameq\x1cX\x0b\x00\x00\x00MainProcessq\x1dX\x07\x00\x00\x00processq\x1eM\xe1\x10X\x07\x00\x00\x00contextq\x1f}q (X\x03\x00\x00\x00keyq!X(\x00\x00\x002@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1q\"X\x03\x00\x00\x00skuq#X\x04\x00\x00\x00A-17q$uX\x05\x00\x00\x00retryq%\x88X\x07\x00\x00\x00messageq&X\x16\x00\x00\x00stock row A-17 missingq'X\x07\x00\x00\x00asctimeq(X\x17\x00\x00\x002023-11-14 22:13:20,255q)X\x08\x00\x00\x00hostnameq*X\x06\x00\x00\x00shop-7q+u.",
];

/// The message of [`JSON`]`[2]` / [`PICKLE`]`[2]`, as the client rendered it.
const CHARGED: &str = "charged EUR 42.50 for order 1234";
/// Its task key (`<n>@<path>`).
const CHARGED_KEY: &str = "1@1b4e28ba-2fa1-11d2-883f-0016d3cca427";

const RULES: &str = r#"
processors:
  store: { type: store }
  errors: { type: console }
  db: { type: console }
rules:
  - filter: level >= error
    processors: [errors, store]
  - filter: target starts_with "shop.db" and level >= warn
    processors: [db]
  - filter: message contains "order" or field.amount > 10
    processors: [store]
"#;

/// One benchmark case: an encoding's messages and a rule set.
struct Case {
    name: String,
    topic: &'static [u8; 3],
    bodies: &'static [&'static [u8]],
    rules: Arc<RuleSet>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (rules_name, src) in [("embedded", ""), ("three_rules", RULES)] {
        let rules = Arc::new(RuleSet::new(&Config::parse(src).unwrap(), 1).unwrap());
        for (enc, topic, bodies) in [("json", b"PLJ", &JSON[..]), ("pickle", b"PLP", &PICKLE[..])] {
            out.push(Case {
                name: format!("{enc}/{rules_name}"),
                topic,
                bodies,
                rules: rules.clone(),
            });
        }
    }
    out
}

/// One round: every message of `case` through the ingest worker's decode,
/// as the ingest thread hands them over (ZeroMQ messages, made here by
/// copying, as ZeroMQ's receive does). Returns the records decoded and the
/// records routed somewhere; a rejected message fails the benchmark.
fn round(case: &Case) -> (u64, u64) {
    let (mut records, mut routed_to) = (0, 0);
    for body in case.bodies {
        let frames = vec![
            zmq::Message::from(&case.topic[..]),
            zmq::Message::from(*body),
        ];
        match decode(black_box(frames), &case.rules) {
            Decoded::Batch { batch, routed, .. } => {
                records += batch.get().len() as u64;
                routed_to += routed.routes.len() as u64;
                black_box(batch);
            }
            Decoded::Rejected(r) => panic!("{}: message rejected: {r}", case.name),
        }
    }
    (records, routed_to)
}

/// What the broker made of the messages is right: one record each, and
/// the third one intact (message, task key, an `extra` field).
fn check(case: &Case) {
    assert_eq!(round(case).0, case.bodies.len() as u64, "{}", case.name);
    let frames = vec![
        zmq::Message::from(&case.topic[..]),
        zmq::Message::from(case.bodies[2]),
    ];
    let Decoded::Batch { batch, routed, .. } = decode(frames, &case.rules) else {
        panic!("{}: rejected", case.name);
    };
    let rec = batch.get().records().next().unwrap().to_record();
    assert_eq!(rec.message, CHARGED, "{}", case.name);
    assert_eq!(rec.key().as_deref(), Some(CHARGED_KEY), "{}", case.name);
    assert_eq!(rec.target, "shop.checkout", "{}", case.name);
    let amount = rec
        .fields
        .iter()
        .find(|f| f.key == "amount")
        .map(|f| &f.value);
    assert_eq!(amount, Some(&Value::F64(42.5)), "{}", case.name);
    // Routed: to the embedded default, or by the third rule.
    assert!(!routed.routes.is_empty(), "{}: not routed", case.name);
}

fn python_ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("python_ingest");
    g.throughput(Throughput::Elements(JSON.len() as u64));
    for case in cases() {
        check(&case);
        g.bench_function(&case.name, |b| {
            b.iter_custom(|iters| {
                let mut records = 0;
                let start = Instant::now();
                for _ in 0..iters {
                    records += round(&case).0;
                }
                let took = start.elapsed();
                assert_eq!(records, iters * case.bodies.len() as u64, "{}", case.name);
                took
            })
        });
    }
    g.finish();
}

/// `PYTHON_INGEST_ROUNDS` rounds of the case `PYTHON_INGEST_CASE`
/// (default `json/embedded`), for an instruction count.
fn fixed_rounds(rounds: &str) {
    let rounds: u64 = rounds.parse().expect("PYTHON_INGEST_ROUNDS: a number");
    let name = std::env::var("PYTHON_INGEST_CASE").unwrap_or_else(|_| "json/embedded".into());
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("PYTHON_INGEST_CASE: no case {name}"));
    check(&case);
    let (records, routed) = measured_rounds(&case, rounds);
    assert_eq!(records, rounds * case.bodies.len() as u64);
    println!("{name}: {rounds} rounds, {records} records decoded, {routed} routes");
}

/// The counted part of [`fixed_rounds`] (callgrind
/// `--toggle-collect='*measured_rounds*'`): records decoded, routes.
#[inline(never)]
fn measured_rounds(case: &Case, rounds: u64) -> (u64, u64) {
    let (mut records, mut routed) = (0, 0);
    for _ in 0..rounds {
        let (n, r) = round(case);
        records += n;
        routed += r;
    }
    (records, routed)
}

fn main() {
    if let Ok(rounds) = std::env::var("PYTHON_INGEST_ROUNDS") {
        return fixed_rounds(&rounds);
    }
    let mut c = Criterion::default().configure_from_args();
    python_ingest(&mut c);
    c.final_summary();
}
