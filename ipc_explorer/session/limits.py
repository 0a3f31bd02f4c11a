"""How large a message a configuration can send: the mechanism's limit, exactly."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from ipc_explorer.codecs import get_codec
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.session.config import SessionConfig
from ipc_explorer.transports import get_transport

#: Generated messages of an unbounded run are checked against the limit with this sequence number.
UNBOUNDED_SEQ = 10**12


def largest_message(config: SessionConfig) -> int:
    """Encoded size of the largest generated message this config will send."""
    codec = get_codec(config.format)
    last = UNBOUNDED_SEQ if config.count is None else max(config.count - 1, 0)
    seqs = {last, max(last - 1, 0)}
    return max(len(codec.encode(sample_payload(seq, config.size))) for seq in seqs)


async def largest_size(config: SessionConfig) -> int:
    """The largest ``size`` whose generated messages fit the mechanism (its limit, exactly)."""
    transport = get_transport(config.mechanism)
    workdir = Path(tempfile.mkdtemp(prefix="ipcx-probe-"))
    try:
        options = await transport.provision(config.options)
        plan = transport.create(options, workdir, secrets.token_hex(4), config.duplex)
        plan.close_fds()
        transport.destroy(plan)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _largest_fitting(config, plan.limits.max_payload)


def _largest_fitting(config: SessionConfig, limit: int) -> int:
    """Search for the largest ``size`` whose encoding fits ``limit``. Each probe encodes a
    message of up to the limit (16 MiB on a stream), so guesses come from the last one that
    fit: most formats add one encoded byte per payload byte, and then three probes find it.
    After a guess that did not fit, the next is the midpoint, so any format ends in a
    logarithmic number of probes."""
    low, high = 0, limit
    low_encoded = largest_message(replace(config, size=0))
    if low_encoded > limit:
        return -1
    overshot = False
    while low < high:
        guess = max(low + 1, low + limit - low_encoded)
        if overshot or guess > high:
            guess = (low + high + 1) // 2
        encoded = largest_message(replace(config, size=guess))
        overshot = encoded > limit
        if overshot:
            high = guess - 1
        else:
            low, low_encoded = guess, encoded
    return low
