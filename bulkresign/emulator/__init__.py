"""A local GenAuth: the management API's token, resign and read-back calls, with an oracle.

The vendor's own SDK cannot tell it from the service on these paths (tests/emulator drive it with
``authing`` 5.1.0). It is the target of the demo, the tests and the benchmarks, and a place to
rehearse a run: rate limit, latency, business switches and injected faults are all settings.

```python
emu = Emulator(EmulatorConfig(rate_limit=300.0))
emu.generate(1000)                       # users 0..999, see synthetic_user(i)
async with serve(emu) as server:         # server.url == "http://127.0.0.1:<port>"
    ...
emu.oracle()                             # what it saw and did
```
"""

from __future__ import annotations

from bulkresign.emulator.config import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_USERPOOL_ID,
    EmulatorConfig,
    Faults,
    ReResign,
    UnknownIds,
    UnknownReads,
)
from bulkresign.emulator.emulator import Emulator, ManualClock, ResignHook
from bulkresign.emulator.server import RunningServer, serve, serve_in_thread
from bulkresign.emulator.users import synthetic_user, synthetic_user_id

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "DEMO_USERPOOL_ID",
    "Emulator",
    "EmulatorConfig",
    "Faults",
    "ManualClock",
    "ReResign",
    "ResignHook",
    "RunningServer",
    "UnknownIds",
    "UnknownReads",
    "serve",
    "serve_in_thread",
    "synthetic_user",
    "synthetic_user_id",
]
