//! Tests for the pickle reader. The vectors are real pickles written by
//! CPython 3.11, produced by this script (`python3 gen.py`, printing each
//! `pickle.dumps(d, proto)` as a Rust byte string); the dicts have the keys,
//! order and types of the `logging.LogRecord.__dict__` the original
//! `PickleFormatter` sends (`exc_info` and `args` set to `None`,
//! `exc_text` with its newlines escaped as the client does):
//!
//! ```python
//! import pickle
//!
//! base = dict(name='shop.cart', msg='added %s', args=None, levelname='WARNING', levelno=30,
//!     pathname='/app/cart.py', filename='cart.py', module='cart', exc_info=None,
//!     exc_text=None, stack_info=None, lineno=41, funcName='add', created=1700000000.5,
//!     msecs=500.0, relativeCreated=12.25, thread=139638318504832, threadName='MainThread',
//!     processName='MainProcess', process=4321, context=None, message='added x',
//!     asctime='2023-11-14 22:13:20,500', hostname='shop-1')
//! task = dict(base, name='shop.pay', msg='boom', levelname='ERROR', levelno=40,
//!     exc_text='Traceback (most recent call last):\\n  File "/app/pay.py", line 9, '
//!              'in pay\\nZeroDivisionError: division by zero',
//!     message='boom', context={'key': '1@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1',
//!                              'user': 'bob', 'order': 17})
//! shared, loop = [1, 2], []
//! loop.append(loop)
//! ctx = {'key': '0@1b4e28ba-2fa1-11d2-883f-0016d3cca427', 'n': -5, 'big': 2**64 - 1,
//!        'huge': -(2**100), 'neg': -2**63, 'f': 0.1, 't': True, 'no': False, 'none': None,
//!        'tup': (1, 'a'), 'raw': b"a'\x00\n", 'a': shared, 'b': shared, 'loop': loop,
//!        'nested': {'x': [{'y': 1.5}]}, 7: 'int key'}
//! rich = dict(base, message='caf\u00e9 \u2713', context=ctx)
//! rich4 = dict(rich, context=dict(ctx, fs=frozenset([3]), s={4}))
//! # (Protocol 4 pickles a bytearray via REDUCE; 5 has BYTEARRAY8.)
//! rich5 = dict(rich, context=dict(ctx, fs=frozenset([3]), s={4}, ba=bytearray(b'\xff')))
//!
//! VECTORS = [
//!     ('PLAIN_P3', base, 3), ('TASK_P3', task, 3), ('TASK_P2', task, 2),
//!     ('RICH_P3', rich, 3), ('RICH_P4', rich4, 4), ('RICH_P5', rich5, 5),
//!     # A set in a protocol-3 context pickles as builtins.set via REDUCE.
//!     ('SET_P3', dict(task, context={'key': '2@x', 's': {1}}), 3),
//! ]
//!
//! class Evil:
//!     def __reduce__(self):
//!         return (print, ('pwned',))
//!
//! VECTORS += [('EVIL_P3', dict(base, msg=Evil()), 3), ('EVIL_P4', dict(base, msg=Evil()), 4)]
//!
//! for name, d, proto in VECTORS:
//!     print(name, pickle.dumps(d, proto))
//! ```

use super::*;
use crate::python::{decode, decode_json};
use distlog_core::record::Value;

const PLAIN_P3: &[u8] =
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x09\x00\x00\x00shop.cartq\x02X\x03\x00\
    \x00\x00msgq\x03X\x08\x00\x00\x00added\x20%sq\x04X\x04\x00\x00\x00argsq\x05NX\x09\
    \x00\x00\x00levelnameq\x06X\x07\x00\x00\x00WARNINGq\x07X\x07\x00\x00\x00levelnoq\x08\
    K\x1eX\x08\x00\x00\x00pathnameq\x09X\x0c\x00\x00\x00/app/cart.pyq\x0aX\x08\x00\x00\
    \x00filenameq\x0bX\x07\x00\x00\x00cart.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x04\x00\
    \x00\x00cartq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\
    \x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K)X\x08\x00\x00\x00funcNameq\
    \x13X\x03\x00\x00\x00addq\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x20\x00\x00X\
    \x05\x00\x00\x00msecsq\x16G@\x7f@\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreate\
    dq\x17G@(\x80\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\
    \x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\
    \x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\
    \x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1eNX\x07\x00\x00\x00messageq\x1fX\x07\x00\
    \x00\x00added\x20xq\x20X\x07\x00\x00\x00asctimeq!X\x17\x00\x00\x002023-11-14\x2022:1\
    3:20,500q\x22X\x08\x00\x00\x00hostnameq#X\x06\x00\x00\x00shop-1q$u.";

const TASK_P3: &[u8] =
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x08\x00\x00\x00shop.payq\x02X\x03\x00\x00\
    \x00msgq\x03X\x04\x00\x00\x00boomq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00le\
    velnameq\x06X\x05\x00\x00\x00ERRORq\x07X\x07\x00\x00\x00levelnoq\x08K(X\x08\x00\x00\
    \x00pathnameq\x09X\x0c\x00\x00\x00/app/cart.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\
    \x07\x00\x00\x00cart.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x04\x00\x00\x00cartq\x0eX\
    \x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10Xm\x00\x00\x00Traceback\
    \x20(most\x20recent\x20call\x20last):\x5cn\x20\x20File\x20\x22/app/pay.py\x22,\x20li\
    ne\x209,\x20in\x20pay\x5cnZeroDivisionError:\x20division\x20by\x20zeroq\x11X\x0a\x00\
    \x00\x00stack_infoq\x12NX\x06\x00\x00\x00linenoq\x13K)X\x08\x00\x00\x00funcNameq\x14\
    X\x03\x00\x00\x00addq\x15X\x07\x00\x00\x00createdq\x16GA\xd9T\xfc@\x20\x00\x00X\x05\
    \x00\x00\x00msecsq\x17G@\x7f@\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\
    \x18G@(\x80\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x19\x8a\x06\x80\x1b_\x14\x00\
    \x7fX\x0a\x00\x00\x00threadNameq\x1aX\x0a\x00\x00\x00MainThreadq\x1bX\x0b\x00\x00\
    \x00processNameq\x1cX\x0b\x00\x00\x00MainProcessq\x1dX\x07\x00\x00\x00processq\x1eM\
    \xe1\x10X\x07\x00\x00\x00contextq\x1f}q\x20(X\x03\x00\x00\x00keyq!X*\x00\x00\x001@1b\
    4e28ba-2fa1-11d2-883f-0016d3cca427/2/1q\x22X\x04\x00\x00\x00userq#X\x03\x00\x00\x00b\
    obq$X\x05\x00\x00\x00orderq%K\x11uX\x07\x00\x00\x00messageq&h\x04X\x07\x00\x00\x00as\
    ctimeq'X\x17\x00\x00\x002023-11-14\x2022:13:20,500q(X\x08\x00\x00\x00hostnameq)X\x06\
    \x00\x00\x00shop-1q*u.";

const TASK_P2: &[u8] =
    b"\x80\x02}q\x00(X\x04\x00\x00\x00nameq\x01X\x08\x00\x00\x00shop.payq\x02X\x03\x00\x00\
    \x00msgq\x03X\x04\x00\x00\x00boomq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00le\
    velnameq\x06X\x05\x00\x00\x00ERRORq\x07X\x07\x00\x00\x00levelnoq\x08K(X\x08\x00\x00\
    \x00pathnameq\x09X\x0c\x00\x00\x00/app/cart.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\
    \x07\x00\x00\x00cart.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x04\x00\x00\x00cartq\x0eX\
    \x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10Xm\x00\x00\x00Traceback\
    \x20(most\x20recent\x20call\x20last):\x5cn\x20\x20File\x20\x22/app/pay.py\x22,\x20li\
    ne\x209,\x20in\x20pay\x5cnZeroDivisionError:\x20division\x20by\x20zeroq\x11X\x0a\x00\
    \x00\x00stack_infoq\x12NX\x06\x00\x00\x00linenoq\x13K)X\x08\x00\x00\x00funcNameq\x14\
    X\x03\x00\x00\x00addq\x15X\x07\x00\x00\x00createdq\x16GA\xd9T\xfc@\x20\x00\x00X\x05\
    \x00\x00\x00msecsq\x17G@\x7f@\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\
    \x18G@(\x80\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x19\x8a\x06\x80\x1b_\x14\x00\
    \x7fX\x0a\x00\x00\x00threadNameq\x1aX\x0a\x00\x00\x00MainThreadq\x1bX\x0b\x00\x00\
    \x00processNameq\x1cX\x0b\x00\x00\x00MainProcessq\x1dX\x07\x00\x00\x00processq\x1eM\
    \xe1\x10X\x07\x00\x00\x00contextq\x1f}q\x20(X\x03\x00\x00\x00keyq!X*\x00\x00\x001@1b\
    4e28ba-2fa1-11d2-883f-0016d3cca427/2/1q\x22X\x04\x00\x00\x00userq#X\x03\x00\x00\x00b\
    obq$X\x05\x00\x00\x00orderq%K\x11uX\x07\x00\x00\x00messageq&h\x04X\x07\x00\x00\x00as\
    ctimeq'X\x17\x00\x00\x002023-11-14\x2022:13:20,500q(X\x08\x00\x00\x00hostnameq)X\x06\
    \x00\x00\x00shop-1q*u.";

const RICH_P3: &[u8] =
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x09\x00\x00\x00shop.cartq\x02X\x03\x00\
    \x00\x00msgq\x03X\x08\x00\x00\x00added\x20%sq\x04X\x04\x00\x00\x00argsq\x05NX\x09\
    \x00\x00\x00levelnameq\x06X\x07\x00\x00\x00WARNINGq\x07X\x07\x00\x00\x00levelnoq\x08\
    K\x1eX\x08\x00\x00\x00pathnameq\x09X\x0c\x00\x00\x00/app/cart.pyq\x0aX\x08\x00\x00\
    \x00filenameq\x0bX\x07\x00\x00\x00cart.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x04\x00\
    \x00\x00cartq\x0eX\x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10NX\x0a\
    \x00\x00\x00stack_infoq\x11NX\x06\x00\x00\x00linenoq\x12K)X\x08\x00\x00\x00funcNameq\
    \x13X\x03\x00\x00\x00addq\x14X\x07\x00\x00\x00createdq\x15GA\xd9T\xfc@\x20\x00\x00X\
    \x05\x00\x00\x00msecsq\x16G@\x7f@\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreate\
    dq\x17G@(\x80\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x18\x8a\x06\x80\x1b_\x14\
    \x00\x7fX\x0a\x00\x00\x00threadNameq\x19X\x0a\x00\x00\x00MainThreadq\x1aX\x0b\x00\
    \x00\x00processNameq\x1bX\x0b\x00\x00\x00MainProcessq\x1cX\x07\x00\x00\x00processq\
    \x1dM\xe1\x10X\x07\x00\x00\x00contextq\x1e}q\x1f(X\x03\x00\x00\x00keyq\x20X&\x00\x00\
    \x000@1b4e28ba-2fa1-11d2-883f-0016d3cca427q!X\x01\x00\x00\x00nq\x22J\xfb\xff\xff\xff\
    X\x03\x00\x00\x00bigq#\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00X\x04\x00\x00\x00h\
    ugeq$\x8a\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0X\x03\x00\x00\x00ne\
    gq%\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80X\x01\x00\x00\x00fq&G?\xb9\x99\x99\x99\
    \x99\x99\x9aX\x01\x00\x00\x00tq'\x88X\x02\x00\x00\x00noq(\x89X\x04\x00\x00\x00noneq)\
    NX\x03\x00\x00\x00tupq*K\x01X\x01\x00\x00\x00aq+\x86q,X\x03\x00\x00\x00rawq-C\x04a'\
    \x00\x0aq.h+]q/(K\x01K\x02eX\x01\x00\x00\x00bq0h/X\x04\x00\x00\x00loopq1]q2h2aX\x06\
    \x00\x00\x00nestedq3}q4X\x01\x00\x00\x00xq5]q6}q7X\x01\x00\x00\x00yq8G?\xf8\x00\x00\
    \x00\x00\x00\x00sasK\x07X\x07\x00\x00\x00int\x20keyq9uX\x07\x00\x00\x00messageq:X\
    \x09\x00\x00\x00caf\xc3\xa9\x20\xe2\x9c\x93q;X\x07\x00\x00\x00asctimeq<X\x17\x00\x00\
    \x002023-11-14\x2022:13:20,500q=X\x08\x00\x00\x00hostnameq>X\x06\x00\x00\x00shop-1q?\
    u.";

const RICH_P4: &[u8] =
    b"\x80\x04\x95\xcc\x02\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04name\x94\x8c\x09shop.cart\
    \x94\x8c\x03msg\x94\x8c\x08added\x20%s\x94\x8c\x04args\x94N\x8c\x09levelname\x94\x8c\
    \x07WARNING\x94\x8c\x07levelno\x94K\x1e\x8c\x08pathname\x94\x8c\x0c/app/cart.py\x94\
    \x8c\x08filename\x94\x8c\x07cart.py\x94\x8c\x06module\x94\x8c\x04cart\x94\x8c\x08exc\
    _info\x94N\x8c\x08exc_text\x94N\x8c\x0astack_info\x94N\x8c\x06lineno\x94K)\x8c\x08fu\
    ncName\x94\x8c\x03add\x94\x8c\x07created\x94GA\xd9T\xfc@\x20\x00\x00\x8c\x05msecs\
    \x94G@\x7f@\x00\x00\x00\x00\x00\x8c\x0frelativeCreated\x94G@(\x80\x00\x00\x00\x00\
    \x00\x8c\x06thread\x94\x8a\x06\x80\x1b_\x14\x00\x7f\x8c\x0athreadName\x94\x8c\x0aMai\
    nThread\x94\x8c\x0bprocessName\x94\x8c\x0bMainProcess\x94\x8c\x07process\x94M\xe1\
    \x10\x8c\x07context\x94}\x94(\x8c\x03key\x94\x8c&0@1b4e28ba-2fa1-11d2-883f-0016d3cca\
    427\x94\x8c\x01n\x94J\xfb\xff\xff\xff\x8c\x03big\x94\x8a\x09\xff\xff\xff\xff\xff\xff\
    \xff\xff\x00\x8c\x04huge\x94\x8a\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
    \xf0\x8c\x03neg\x94\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8c\x01f\x94G?\xb9\x99\
    \x99\x99\x99\x99\x9a\x8c\x01t\x94\x88\x8c\x02no\x94\x89\x8c\x04none\x94N\x8c\x03tup\
    \x94K\x01\x8c\x01a\x94\x86\x94\x8c\x03raw\x94C\x04a'\x00\x0a\x94h+]\x94(K\x01K\x02e\
    \x8c\x01b\x94h/\x8c\x04loop\x94]\x94h2a\x8c\x06nested\x94}\x94\x8c\x01x\x94]\x94}\
    \x94\x8c\x01y\x94G?\xf8\x00\x00\x00\x00\x00\x00sasK\x07\x8c\x07int\x20key\x94\x8c\
    \x02fs\x94(K\x03\x91\x94\x8c\x01s\x94\x8f\x94(K\x04\x90u\x8c\x07message\x94\x8c\x09c\
    af\xc3\xa9\x20\xe2\x9c\x93\x94\x8c\x07asctime\x94\x8c\x172023-11-14\x2022:13:20,500\
    \x94\x8c\x08hostname\x94\x8c\x06shop-1\x94u.";

const RICH_P5: &[u8] =
    b"\x80\x05\x95\xdc\x02\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04name\x94\x8c\x09shop.cart\
    \x94\x8c\x03msg\x94\x8c\x08added\x20%s\x94\x8c\x04args\x94N\x8c\x09levelname\x94\x8c\
    \x07WARNING\x94\x8c\x07levelno\x94K\x1e\x8c\x08pathname\x94\x8c\x0c/app/cart.py\x94\
    \x8c\x08filename\x94\x8c\x07cart.py\x94\x8c\x06module\x94\x8c\x04cart\x94\x8c\x08exc\
    _info\x94N\x8c\x08exc_text\x94N\x8c\x0astack_info\x94N\x8c\x06lineno\x94K)\x8c\x08fu\
    ncName\x94\x8c\x03add\x94\x8c\x07created\x94GA\xd9T\xfc@\x20\x00\x00\x8c\x05msecs\
    \x94G@\x7f@\x00\x00\x00\x00\x00\x8c\x0frelativeCreated\x94G@(\x80\x00\x00\x00\x00\
    \x00\x8c\x06thread\x94\x8a\x06\x80\x1b_\x14\x00\x7f\x8c\x0athreadName\x94\x8c\x0aMai\
    nThread\x94\x8c\x0bprocessName\x94\x8c\x0bMainProcess\x94\x8c\x07process\x94M\xe1\
    \x10\x8c\x07context\x94}\x94(\x8c\x03key\x94\x8c&0@1b4e28ba-2fa1-11d2-883f-0016d3cca\
    427\x94\x8c\x01n\x94J\xfb\xff\xff\xff\x8c\x03big\x94\x8a\x09\xff\xff\xff\xff\xff\xff\
    \xff\xff\x00\x8c\x04huge\x94\x8a\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
    \xf0\x8c\x03neg\x94\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8c\x01f\x94G?\xb9\x99\
    \x99\x99\x99\x99\x9a\x8c\x01t\x94\x88\x8c\x02no\x94\x89\x8c\x04none\x94N\x8c\x03tup\
    \x94K\x01\x8c\x01a\x94\x86\x94\x8c\x03raw\x94C\x04a'\x00\x0a\x94h+]\x94(K\x01K\x02e\
    \x8c\x01b\x94h/\x8c\x04loop\x94]\x94h2a\x8c\x06nested\x94}\x94\x8c\x01x\x94]\x94}\
    \x94\x8c\x01y\x94G?\xf8\x00\x00\x00\x00\x00\x00sasK\x07\x8c\x07int\x20key\x94\x8c\
    \x02fs\x94(K\x03\x91\x94\x8c\x01s\x94\x8f\x94(K\x04\x90\x8c\x02ba\x94\x96\x01\x00\
    \x00\x00\x00\x00\x00\x00\xff\x94u\x8c\x07message\x94\x8c\x09caf\xc3\xa9\x20\xe2\x9c\
    \x93\x94\x8c\x07asctime\x94\x8c\x172023-11-14\x2022:13:20,500\x94\x8c\x08hostname\
    \x94\x8c\x06shop-1\x94u.";

const SET_P3: &[u8] =
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x08\x00\x00\x00shop.payq\x02X\x03\x00\x00\
    \x00msgq\x03X\x04\x00\x00\x00boomq\x04X\x04\x00\x00\x00argsq\x05NX\x09\x00\x00\x00le\
    velnameq\x06X\x05\x00\x00\x00ERRORq\x07X\x07\x00\x00\x00levelnoq\x08K(X\x08\x00\x00\
    \x00pathnameq\x09X\x0c\x00\x00\x00/app/cart.pyq\x0aX\x08\x00\x00\x00filenameq\x0bX\
    \x07\x00\x00\x00cart.pyq\x0cX\x06\x00\x00\x00moduleq\x0dX\x04\x00\x00\x00cartq\x0eX\
    \x08\x00\x00\x00exc_infoq\x0fNX\x08\x00\x00\x00exc_textq\x10Xm\x00\x00\x00Traceback\
    \x20(most\x20recent\x20call\x20last):\x5cn\x20\x20File\x20\x22/app/pay.py\x22,\x20li\
    ne\x209,\x20in\x20pay\x5cnZeroDivisionError:\x20division\x20by\x20zeroq\x11X\x0a\x00\
    \x00\x00stack_infoq\x12NX\x06\x00\x00\x00linenoq\x13K)X\x08\x00\x00\x00funcNameq\x14\
    X\x03\x00\x00\x00addq\x15X\x07\x00\x00\x00createdq\x16GA\xd9T\xfc@\x20\x00\x00X\x05\
    \x00\x00\x00msecsq\x17G@\x7f@\x00\x00\x00\x00\x00X\x0f\x00\x00\x00relativeCreatedq\
    \x18G@(\x80\x00\x00\x00\x00\x00X\x06\x00\x00\x00threadq\x19\x8a\x06\x80\x1b_\x14\x00\
    \x7fX\x0a\x00\x00\x00threadNameq\x1aX\x0a\x00\x00\x00MainThreadq\x1bX\x0b\x00\x00\
    \x00processNameq\x1cX\x0b\x00\x00\x00MainProcessq\x1dX\x07\x00\x00\x00processq\x1eM\
    \xe1\x10X\x07\x00\x00\x00contextq\x1f}q\x20(X\x03\x00\x00\x00keyq!X\x03\x00\x00\x002\
    @xq\x22X\x01\x00\x00\x00sq#cbuiltins\x0aset\x0aq$]q%K\x01a\x85q&Rq'uX\x07\x00\x00\
    \x00messageq(h\x04X\x07\x00\x00\x00asctimeq)X\x17\x00\x00\x002023-11-14\x2022:13:20,\
    500q*X\x08\x00\x00\x00hostnameq+X\x06\x00\x00\x00shop-1q,u.";

const EVIL_P3: &[u8] =
    b"\x80\x03}q\x00(X\x04\x00\x00\x00nameq\x01X\x09\x00\x00\x00shop.cartq\x02X\x03\x00\
    \x00\x00msgq\x03cbuiltins\x0aprint\x0aq\x04X\x05\x00\x00\x00pwnedq\x05\x85q\x06Rq\
    \x07X\x04\x00\x00\x00argsq\x08NX\x09\x00\x00\x00levelnameq\x09X\x07\x00\x00\x00WARNI\
    NGq\x0aX\x07\x00\x00\x00levelnoq\x0bK\x1eX\x08\x00\x00\x00pathnameq\x0cX\x0c\x00\x00\
    \x00/app/cart.pyq\x0dX\x08\x00\x00\x00filenameq\x0eX\x07\x00\x00\x00cart.pyq\x0fX\
    \x06\x00\x00\x00moduleq\x10X\x04\x00\x00\x00cartq\x11X\x08\x00\x00\x00exc_infoq\x12N\
    X\x08\x00\x00\x00exc_textq\x13NX\x0a\x00\x00\x00stack_infoq\x14NX\x06\x00\x00\x00lin\
    enoq\x15K)X\x08\x00\x00\x00funcNameq\x16X\x03\x00\x00\x00addq\x17X\x07\x00\x00\x00cr\
    eatedq\x18GA\xd9T\xfc@\x20\x00\x00X\x05\x00\x00\x00msecsq\x19G@\x7f@\x00\x00\x00\x00\
    \x00X\x0f\x00\x00\x00relativeCreatedq\x1aG@(\x80\x00\x00\x00\x00\x00X\x06\x00\x00\
    \x00threadq\x1b\x8a\x06\x80\x1b_\x14\x00\x7fX\x0a\x00\x00\x00threadNameq\x1cX\x0a\
    \x00\x00\x00MainThreadq\x1dX\x0b\x00\x00\x00processNameq\x1eX\x0b\x00\x00\x00MainPro\
    cessq\x1fX\x07\x00\x00\x00processq\x20M\xe1\x10X\x07\x00\x00\x00contextq!NX\x07\x00\
    \x00\x00messageq\x22X\x07\x00\x00\x00added\x20xq#X\x07\x00\x00\x00asctimeq$X\x17\x00\
    \x00\x002023-11-14\x2022:13:20,500q%X\x08\x00\x00\x00hostnameq&X\x06\x00\x00\x00shop\
    -1q'u.";

const EVIL_P4: &[u8] =
    b"\x80\x04\x95\xd4\x01\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04name\x94\x8c\x09shop.cart\
    \x94\x8c\x03msg\x94\x8c\x08builtins\x94\x8c\x05print\x94\x93\x94\x8c\x05pwned\x94\
    \x85\x94R\x94\x8c\x04args\x94N\x8c\x09levelname\x94\x8c\x07WARNING\x94\x8c\x07leveln\
    o\x94K\x1e\x8c\x08pathname\x94\x8c\x0c/app/cart.py\x94\x8c\x08filename\x94\x8c\x07ca\
    rt.py\x94\x8c\x06module\x94\x8c\x04cart\x94\x8c\x08exc_info\x94N\x8c\x08exc_text\x94\
    N\x8c\x0astack_info\x94N\x8c\x06lineno\x94K)\x8c\x08funcName\x94\x8c\x03add\x94\x8c\
    \x07created\x94GA\xd9T\xfc@\x20\x00\x00\x8c\x05msecs\x94G@\x7f@\x00\x00\x00\x00\x00\
    \x8c\x0frelativeCreated\x94G@(\x80\x00\x00\x00\x00\x00\x8c\x06thread\x94\x8a\x06\x80\
    \x1b_\x14\x00\x7f\x8c\x0athreadName\x94\x8c\x0aMainThread\x94\x8c\x0bprocessName\x94\
    \x8c\x0bMainProcess\x94\x8c\x07process\x94M\xe1\x10\x8c\x07context\x94N\x8c\x07messa\
    ge\x94\x8c\x07added\x20x\x94\x8c\x07asctime\x94\x8c\x172023-11-14\x2022:13:20,500\
    \x94\x8c\x08hostname\x94\x8c\x06shop-1\x94u.";

/// `json.dumps` of `base` and `task` above: what the JSON formatter sends.
const PLAIN_JSON: &str = r#"{"name": "shop.cart", "msg": "added %s", "args": null, "levelname": "WARNING", "levelno": 30, "pathname": "/app/cart.py", "filename": "cart.py", "module": "cart", "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 41, "funcName": "add", "created": 1700000000.5, "msecs": 500.0, "relativeCreated": 12.25, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": null, "message": "added x", "asctime": "2023-11-14 22:13:20,500", "hostname": "shop-1"}"#;
const TASK_JSON: &str = r#"{"name": "shop.pay", "msg": "boom", "args": null, "levelname": "ERROR", "levelno": 40, "pathname": "/app/cart.py", "filename": "cart.py", "module": "cart", "exc_info": null, "exc_text": "Traceback (most recent call last):\\n  File \"/app/pay.py\", line 9, in pay\\nZeroDivisionError: division by zero", "stack_info": null, "lineno": 41, "funcName": "add", "created": 1700000000.5, "msecs": 500.0, "relativeCreated": 12.25, "thread": 139638318504832, "threadName": "MainThread", "processName": "MainProcess", "process": 4321, "context": {"key": "1@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1", "user": "bob", "order": 17}, "message": "boom", "asctime": "2023-11-14 22:13:20,500", "hostname": "shop-1"}"#;

const VALID: &[&[u8]] = &[PLAIN_P3, TASK_P3, TASK_P2, RICH_P3, RICH_P4, RICH_P5];

fn reason(body: &[u8]) -> &'static str {
    decode_pickle(body).unwrap_err().reason()
}

fn field(r: &Record, k: &str) -> Option<Value> {
    r.fields
        .iter()
        .find(|f| f.key == k)
        .map(|f| f.value.clone())
}

fn s(v: &str) -> Option<Value> {
    Some(Value::Str(v.into()))
}

#[test]
fn plain_record_maps_as_the_json_form_does() {
    let (sender, r) = decode_pickle(PLAIN_P3).unwrap();
    assert_eq!(
        (sender.host.as_str(), sender.pid, sender.program.as_str()),
        ("shop-1", 4321, "MainProcess")
    );
    assert_eq!(r.time_ns, 1_700_000_000_500_000_000);
    assert_eq!((r.level, r.line), (30, 41));
    assert_eq!(r.thread_id, 139_638_318_504_832);
    assert_eq!(
        (r.target.as_str(), r.message.as_str()),
        ("shop.cart", "added x")
    );
    assert_eq!(
        (r.file.as_str(), r.module.as_str()),
        ("/app/cart.py", "cart")
    );
    assert_eq!(r.key(), None);
    assert_eq!(field(&r, "msg"), s("added %s"));
    // Identical to what the JSON path makes of the same record.
    assert_eq!(
        decode_pickle(PLAIN_P3).unwrap(),
        decode_json(PLAIN_JSON.as_bytes()).unwrap()
    );
    assert_eq!(
        decode(b'P', PLAIN_P3).unwrap(),
        decode(b'J', PLAIN_JSON.as_bytes()).unwrap()
    );
}

#[test]
fn task_record_keeps_key_context_and_exception_text() {
    for v in [TASK_P3, TASK_P2] {
        let (_, r) = decode_pickle(v).unwrap();
        assert_eq!(
            r.key().unwrap(),
            "1@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1"
        );
        assert_eq!(
            (r.task_n, r.task.as_str()),
            (1, "1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1")
        );
        assert_eq!(r.level, 40);
        assert!(r.error.starts_with("Traceback (most recent call last):\\n"));
        assert!(r.error.ends_with("ZeroDivisionError: division by zero"));
        assert_eq!(field(&r, "user"), s("bob"));
        assert_eq!(field(&r, "order"), Some(Value::I64(17)));
        assert_eq!(
            decode_pickle(v).unwrap(),
            decode_json(TASK_JSON.as_bytes()).unwrap()
        );
    }
}

#[test]
fn rich_context_values_map_to_plain_data() {
    for v in [RICH_P3, RICH_P4, RICH_P5] {
        let (_, r) = decode_pickle(v).unwrap();
        assert_eq!(r.message, "caf\u{e9} \u{2713}");
        assert_eq!(r.key().unwrap(), "0@1b4e28ba-2fa1-11d2-883f-0016d3cca427");
        assert_eq!(field(&r, "n"), Some(Value::I64(-5)));
        assert_eq!(field(&r, "big"), Some(Value::U64(u64::MAX)));
        assert_eq!(field(&r, "neg"), Some(Value::I64(i64::MIN)));
        assert_eq!(field(&r, "huge"), s("-1267650600228229401496703205376"));
        assert_eq!(field(&r, "f"), Some(Value::F64(0.1)));
        assert_eq!(field(&r, "t"), Some(Value::Bool(true)));
        assert_eq!(field(&r, "no"), Some(Value::Bool(false)));
        assert_eq!(field(&r, "none"), Some(Value::Null));
        assert_eq!(field(&r, "tup"), s(r#"[1,"a"]"#));
        assert_eq!(field(&r, "raw"), s(r#"b"a'\x00\n""#));
        // One list referenced twice through the memo, and one inside itself.
        assert_eq!(field(&r, "a"), s("[1,2]"));
        assert_eq!(field(&r, "b"), s("[1,2]"));
        assert_eq!(field(&r, "loop"), s(r#"["[...]"]"#));
        assert_eq!(field(&r, "nested"), s(r#"{"x":[{"y":1.5}]}"#));
        assert_eq!(field(&r, "7"), s("int key"));
    }
    for v in [RICH_P4, RICH_P5] {
        let (_, r) = decode_pickle(v).unwrap();
        assert_eq!(field(&r, "fs"), s("[3]"));
        assert_eq!(field(&r, "s"), s("[4]"));
    }
    let (_, r) = decode_pickle(RICH_P5).unwrap();
    assert_eq!(field(&r, "ba"), s(r"b'\xff'"));
}

#[test]
fn objects_and_calls_are_forbidden() {
    // Real pickles: a set at protocol 3 (builtins.set via REDUCE), and an
    // object whose __reduce__ calls print.
    assert_eq!(reason(SET_P3), "pickle_forbidden");
    assert_eq!(reason(EVIL_P3), "pickle_forbidden");
    assert_eq!(reason(EVIL_P4), "pickle_forbidden");
    let e = decode_pickle(EVIL_P3).unwrap_err().to_string();
    assert!(e.contains("GLOBAL"), "{e}");
    let e = decode_pickle(EVIL_P4).unwrap_err().to_string();
    assert!(e.contains("STACK_GLOBAL"), "{e}");
    // Every opcode class, each as the first thing after PROTO and inside a
    // record dict being built.
    let ops: &[(u8, &str)] = &[
        (b'c', "GLOBAL"),
        (0x93, "STACK_GLOBAL"),
        (b'R', "REDUCE"),
        (b'b', "BUILD"),
        (b'i', "INST"),
        (b'o', "OBJ"),
        (0x81, "NEWOBJ"),
        (0x92, "NEWOBJ_EX"),
        (b'P', "PERSID"),
        (b'Q', "BINPERSID"),
        (0x82, "EXT1"),
        (0x83, "EXT2"),
        (0x84, "EXT4"),
    ];
    for &(op, name) in ops {
        for proto in 2..=5u8 {
            let body = [0x80, proto, op, b'.'];
            let e = decode_pickle(&body).unwrap_err();
            assert_eq!(e.reason(), "pickle_forbidden", "{name}");
            assert!(e.to_string().contains(name), "{e}");
        }
        let mut body = b"\x80\x03}(X\x01\x00\x00\x00aK\x01".to_vec();
        body.extend_from_slice(&[op, b'u', b'.']);
        assert_eq!(reason(&body), "pickle_forbidden", "{name}");
    }
}

#[test]
fn unsupported_protocols_and_opcodes() {
    // Protocol 0 (`pickle.dumps({}, 0)`) and 1 carry no PROTO.
    assert_eq!(reason(b"(dp0\n."), "pickle_unsupported");
    assert_eq!(reason(b"}q\x00."), "pickle_unsupported");
    assert_eq!(reason(b"\x80\x01}."), "pickle_unsupported");
    assert_eq!(reason(b"\x80\x06}."), "pickle_unsupported");
    for op in [b'I', b'L', b'F', b'S', b'V', b'g', b'p', 0x97, 0x98] {
        assert_eq!(
            reason(&[0x80, 3, op, b'.']),
            "pickle_unsupported",
            "0x{op:02x}"
        );
    }
}

#[test]
fn every_truncation_is_an_error() {
    for v in VALID.iter().chain([&SET_P3, &EVIL_P3]) {
        for cut in 0..v.len() {
            let e = decode_pickle(&v[..cut]).unwrap_err();
            assert!(
                matches!(e.reason(), "pickle_syntax" | "pickle_forbidden"),
                "cut {cut}: {e}"
            );
        }
    }
    for v in VALID {
        for cut in 0..v.len() {
            assert_eq!(reason(&v[..cut]), "pickle_syntax");
        }
    }
}

#[test]
fn mutations_never_panic() {
    // A cheap in-test fuzzer: flipped bytes, inserted and deleted ones.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for v in VALID {
        for _ in 0..3000 {
            let mut b = v.to_vec();
            for _ in 0..=(rnd() % 4) {
                let i = (rnd() as usize) % b.len();
                match rnd() % 3 {
                    0 => b[i] = rnd() as u8,
                    1 => b.insert(i, rnd() as u8),
                    _ => {
                        b.remove(i);
                    }
                }
                if b.is_empty() {
                    break;
                }
            }
            let _ = decode_pickle(&b);
        }
    }
}

#[test]
fn huge_claimed_lengths_fail_before_allocating() {
    let cases: &[&[u8]] = &[
        b"\x80\x03X\xff\xff\xff\xff",
        b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x80abc",
        b"\x80\x03B\xff\xff\xff\xffabc",
        b"\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00",
        b"\x80\x05\x96\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"\x80\x03\x8b\xff\xff\xff\x7f",
        b"\x80\x03T\xff\xff\xff\x7f",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff}.",
        b"\x80\x03\x8a\xffabc",
    ];
    for c in cases {
        let e = decode_pickle(c).unwrap_err();
        assert_eq!(e.reason(), "pickle_syntax", "{e}");
        assert!(
            e.to_string().contains("truncated") || e.to_string().contains("frame"),
            "{e}"
        );
    }
    // Negative signed lengths.
    assert_eq!(reason(b"\x80\x03\x8b\xff\xff\xff\xff."), "pickle_syntax");
    assert_eq!(reason(b"\x80\x03T\x00\x00\x00\x80."), "pickle_syntax");
    // A body over the limit is refused before it is read.
    assert_eq!(
        reason(&vec![b'N'; crate::python::MAX_BODY + 1]),
        "too_large"
    );
}

#[test]
fn nesting_stack_memo_and_expansion_are_bounded() {
    // Lists nested 10,000 deep: within the stack, over the nesting limit.
    let mut deep = b"\x80\x03".to_vec();
    deep.extend(std::iter::repeat(b']').take(10_000));
    deep.extend(std::iter::repeat(b'a').take(9_999));
    deep.push(b'.');
    assert_eq!(reason(&deep), "pickle_limit");
    // Exactly at the limit parses (the top dict is level 0).
    let mut ok = b"\x80\x03}X\x01\x00\x00\x00a".to_vec();
    ok.extend(std::iter::repeat(b']').take(MAX_DEPTH - 1));
    ok.extend(std::iter::repeat(b'a').take(MAX_DEPTH - 2));
    ok.extend_from_slice(b"s.");
    to_json(&ok).unwrap();
    let mut over = b"\x80\x03}X\x01\x00\x00\x00a".to_vec();
    over.extend(std::iter::repeat(b']').take(MAX_DEPTH));
    over.extend(std::iter::repeat(b'a').take(MAX_DEPTH - 1));
    over.extend_from_slice(b"s.");
    assert_eq!(to_json(&over).unwrap_err().reason(), "pickle_limit");
    // A deep stack of lists or marks.
    let many = [b"\x80\x03".as_slice(), &[b']'; 100_000], b"."].concat();
    assert_eq!(reason(&many), "pickle_limit");
    let marks = [b"\x80\x03".as_slice(), &[b'('; 100_000], b"."].concat();
    assert_eq!(reason(&marks), "pickle_limit");
    // Memo entries.
    let mut memo = b"\x80\x03N".to_vec();
    for i in 0..=MAX_MEMO as u32 {
        memo.push(b'r');
        memo.extend_from_slice(&i.to_le_bytes());
    }
    memo.push(b'.');
    assert_eq!(reason(&memo), "pickle_limit");
    // Values created.
    let mut values = b"\x80\x03]".to_vec();
    for _ in 0..5 {
        values.push(b'(');
        values.extend(std::iter::repeat(*b"K\x01").take(60_000).flatten());
        values.push(b'e');
    }
    values.push(b'.');
    assert_eq!(reason(&values), "pickle_limit");
    // "Billion laughs": a 10 kB string shared ten ways, six levels deep, is
    // a 10 GB expansion from a small body.
    let mut laughs = b"\x80\x03X\x10\x27\x00\x00".to_vec();
    laughs.extend(std::iter::repeat(b'x').take(10_000));
    laughs.extend_from_slice(b"q\x000");
    for level in 0..6u8 {
        laughs.extend_from_slice(b"](");
        for _ in 0..10 {
            laughs.extend_from_slice(&[b'h', level]);
        }
        laughs.extend_from_slice(&[b'e', b'q', level + 1, b'0']);
    }
    laughs.extend_from_slice(b"h\x06.");
    let t = std::time::Instant::now();
    assert_eq!(to_json(&laughs).unwrap_err().reason(), "pickle_limit");
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn malformed_pickles_are_syntax_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "truncated"),
        (b"\x80\x03}", "truncated"),
        (b"\x80\x03}.x", "after STOP"),
        (b"\x80\x03}}.", "left at STOP"),
        (b"\x80\x03}(.", "left at STOP"),
        (b"\x80\x03.", "left at STOP"),
        (b"\x80\x03Na.", "underflow"),
        (b"\x80\x03}Na.", "non-list"),
        (b"\x80\x03]NNs.", "non-dict"),
        (b"\x80\x03](N\x90.", "non-set"),
        (b"\x80\x03)(Ne.", "non-list"),
        (b"\x80\x03}e.", "no MARK"),
        (b"\x80\x03}(Nu.", "odd"),
        (b"\x80\x03(Nd.", "odd"),
        (b"\x80\x03h\x05.", "memo slot 5"),
        (b"\x80\x03\xff.", "unknown opcode 0xff"),
        (b"\x80\x03}(\x85.", "underflow"),
        (b"\x80\x03}(N\x85.", "left at STOP"),
        (b"\x80\x03}(2.", "underflow"),
    ];
    for (body, what) in cases {
        let e = decode_pickle(body).unwrap_err();
        assert_eq!(e.reason(), "pickle_syntax", "{body:?}: {e}");
        assert!(e.to_string().contains(what), "{body:?}: {e} lacks {what:?}");
    }
}

#[test]
fn top_value_must_be_a_dict() {
    assert_eq!(reason(b"\x80\x03N."), "pickle_not_dict");
    assert_eq!(reason(b"\x80\x03]q\x00."), "pickle_not_dict");
    // A dict without the LogRecord fields goes through the common mapping.
    assert_eq!(reason(b"\x80\x03}."), "missing_field");
    assert_eq!(
        decode(b'P', b"\x80\x03}.").unwrap_err().reason(),
        "missing_field"
    );
}

#[test]
fn stack_ops_keys_and_memo_follow_python() {
    // POP, POP_MARK, DUP, MEMOIZE; keys of every scalar type as json.dumps
    // writes them; later duplicate keys win; a memoized list grown after
    // the PUT is seen grown (Python's memo holds references).
    // (`pickle.loads` of it gives {True: 1, False: 2, None: 3, 5: 4,
    // 131072.0: 5, 'k': 2, 'l': [9], 'm': [9], 'd': ('x', 'x')}.)
    let body = b"\x80\x04}\x94(NNK\x071(N00(\x88K\x01\x89K\x02NK\x03K\x05K\x04\
        GA\x00\x00\x00\x00\x00\x00\x00K\x05\x8c\x01kK\x01\x8c\x01kK\x02\x8c\x01l]\x94\
        \x8c\x01mh\x01u\x8c\x01d\x8c\x01x2\x86sh\x01K\x09a0.";
    let v = to_json(body).unwrap();
    assert_eq!(
        v.to_string(),
        r#"{"131072.0":5,"5":4,"d":["x","x"],"false":2,"k":2,"l":[9],"m":[9],"null":3,"true":1}"#
    );
}

#[test]
fn long_integers() {
    let node = |b: &[u8]| match int_from_le(b) {
        Some(Node::Int(v)) => format!("i{v}"),
        Some(Node::UInt(v)) => format!("u{v}"),
        Some(Node::Big(s)) => format!("b{s}"),
        Some(_) => unreachable!(),
        None => "none".into(),
    };
    assert_eq!(node(b""), "i0");
    assert_eq!(node(b"\xff"), "i-1");
    assert_eq!(node(b"\x00\x80"), "i-32768");
    assert_eq!(node(b"\x00\x80\x00"), "i32768");
    assert_eq!(
        node(b"\x00\x00\x00\x00\x00\x00\x00\x80"),
        "i-9223372036854775808"
    );
    assert_eq!(
        node(b"\x00\x00\x00\x00\x00\x00\x00\x80\x00"),
        "u9223372036854775808"
    );
    assert_eq!(
        node(b"\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
        "u18446744073709551615"
    );
    assert_eq!(
        node(b"\xff\xff\xff\xff\xff\xff\xff\x7f\xff"),
        "b-9223372036854775809"
    );
    assert_eq!(
        node(b"\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
        "b18446744073709551616"
    );
    // 2**100 and -(2**100) (`(2**100).to_bytes(14, 'little', signed=True)`).
    let mut p = [0u8; 14];
    p[12] = 0x10;
    assert_eq!(node(&p), "b1267650600228229401496703205376");
    let mut n = [0u8; 14];
    n[12] = 0xf0;
    n[13] = 0xff;
    assert_eq!(node(&n), "b-1267650600228229401496703205376");
    // Redundant sign bytes are fine; too many significant ones are not.
    assert_eq!(node(&[0u8; 200]), "i0");
    assert_eq!(node(&[0xffu8; 200]), "i-1");
    let mut long = [0u8; MAX_BIG_INT_BYTES + 1];
    long[MAX_BIG_INT_BYTES - 1] = 1;
    assert_eq!(node(&long), "none");
    let body = [b"\x80\x03\x8a\x41".as_slice(), &long, b"."].concat();
    assert_eq!(reason(&body), "pickle_limit");
}

#[test]
fn bytes_and_floats_render_as_python_would() {
    assert_eq!(bytes_repr(b"abc"), "b'abc'");
    assert_eq!(bytes_repr(b"a'b"), r#"b"a'b""#);
    assert_eq!(bytes_repr(b"a'\"b"), r#"b'a\'"b'"#);
    assert_eq!(
        bytes_repr(b"\\\t\r\n\x00\x7f\xff"),
        r"b'\\\t\r\n\x00\x7f\xff'"
    );
    assert_eq!(float_json(f64::NAN), Json::String("nan".into()));
    assert_eq!(float_json(f64::INFINITY), Json::String("inf".into()));
    assert_eq!(float_json(f64::NEG_INFINITY), Json::String("-inf".into()));
    // Lone surrogates (pickled with surrogatepass) decode lossily.
    let v = to_json(b"\x80\x03X\x03\x00\x00\x00\xed\xa0\x80.").unwrap();
    assert_eq!(v, Json::String("\u{fffd}\u{fffd}\u{fffd}".into()));
}

/// The pickle decoder against the mapping it replaced (`to_json`, then
/// the old LogRecord mapping of the object, kept in `json/tests.rs`): the
/// same record or the same error on every vector, every prefix of each,
/// and random byte edits of each.
#[test]
fn agrees_with_the_value_mapping() {
    use crate::python::json::tests::reference;
    let old = |b: &[u8]| match to_json(b)? {
        Json::Object(m) => reference::from_dict(&m),
        _ => Err(IngestError::new(ErrorKind::PickleNotDict)),
    };
    let (mut ok, mut errs) = (0, 0);
    let mut check = |b: &[u8]| match (decode_pickle(b), old(b)) {
        (Ok(n), Ok(o)) => {
            assert_eq!(format!("{n:?}"), format!("{o:?}"), "{b:?}");
            ok += 1;
        }
        (Err(n), Err(o)) => {
            assert_eq!(n, o, "{b:?}");
            assert_eq!(n.to_string(), o.to_string(), "{b:?}");
            errs += 1;
        }
        (n, o) => panic!("new {n:?}, old {o:?} for {b:?}"),
    };
    let mut rng = fastrand::Rng::with_seed(0x91c_c1e5);
    let vectors = [
        PLAIN_P3, TASK_P3, TASK_P2, RICH_P3, RICH_P4, RICH_P5, SET_P3, EVIL_P3, EVIL_P4,
    ];
    for v in vectors {
        check(v);
        for end in 0..v.len() {
            check(&v[..end]);
        }
        for _ in 0..2_000 {
            let mut b = v.to_vec();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..b.len());
                match rng.u8(0..3) {
                    0 => b[i] = rng.u8(..),
                    1 => b.insert(i, rng.u8(..)),
                    _ => {
                        b.remove(i);
                    }
                }
                if b.is_empty() {
                    break;
                }
            }
            check(&b);
        }
    }
    assert!(ok > 100 && errs > 1_000, "{ok} accepted, {errs} rejected");
}
