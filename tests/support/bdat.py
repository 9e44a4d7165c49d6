"""aiosmtpd's SMTP protocol with CHUNKING (RFC 3030 §2, the BDAT command), which aiosmtpd lacks.

The handler advertises CHUNKING (a ``chunking`` attribute that is true, and "250-CHUNKING" in its EHLO
reply); without it BDAT is an unknown command, as on any server that does not offer it. With it:

* ``BDAT <chunk-size> [LAST]`` is followed by exactly chunk-size octets, read as they are (no
  dot-stuffing, no line limit) and always read in full, whatever the reply, so that content is never
  taken for commands;
* each chunk gets one reply: "250 2.0.0 <n> octets received", and for the LAST chunk the reply of the
  handler's ``handle_DATA`` to the whole content (``envelope.content``, as after DATA);
* BDAT before MAIL is refused 503 and BDAT without an accepted RCPT 554, chunks beyond the server's
  size limit 552;
* a refused BDAT leaves the transaction failed: every further BDAT is read and refused 503, and so are
  MAIL, RCPT and DATA, until RSET (or EHLO) clears it;
* DATA after a BDAT of the same transaction is refused 503 (no mixing), and fails it the same way.
"""

from __future__ import annotations

import re

from aiosmtpd.smtp import MISSING, SMTP

BDAT_ARGUMENTS = re.compile(r"(\d{1,18})(?: +(LAST))?", re.IGNORECASE)


class ChunkingSMTP(SMTP):
    """The protocol above; everything else is aiosmtpd's."""

    def __init__(self, *args, **kwargs):
        self._chunks: bytearray | None = None  # the content so far of a transaction that began BDAT
        self._bdat_failed = False
        super().__init__(*args, **kwargs)

    def _set_post_data_state(self):
        super()._set_post_data_state()
        self._chunks = None

    def _set_rset_state(self):
        super()._set_rset_state()
        self._bdat_failed = False

    def _chunking(self) -> bool:
        return bool(getattr(self.event_handler, "chunking", False))

    async def _refuse_in_failed_transaction(self) -> bool:
        if self._bdat_failed:
            await self.push("503 5.5.1 Error: a BDAT failed, RSET first")
            return True
        return False

    async def smtp_BDAT(self, arg: str | None) -> None:
        if not self._chunking():
            await self.push('500 Error: command "BDAT" not recognized')
            return
        match = BDAT_ARGUMENTS.fullmatch(arg or "")
        if match is None:  # no size to read: nothing more can be done in step with the client
            await self.push("501 5.5.4 Syntax: BDAT <chunk-size> [LAST]")
            return
        size, last = int(match[1]), match[2] is not None
        chunk = await self._reader.readexactly(size)
        if await self._refuse_in_failed_transaction():
            return
        refusal = self._refusal(size)
        if refusal:
            self._bdat_failed = True
            await self.push(refusal)
            return
        assert self._chunks is not None
        self._chunks += chunk
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        self.envelope.content = self.envelope.original_content = bytes(self._chunks)
        status = await self._call_handler_hook("DATA")
        if status is None:  # the handler closed the connection instead of answering
            return
        status = "250 OK" if status is MISSING else status
        if status[:1] in ("4", "5"):
            self._bdat_failed = True
        else:
            self._set_post_data_state()
        await self.push(status)

    def _refusal(self, size: int) -> str:
        """Why this chunk cannot join the transaction ("" when it can); starts the chunk buffer."""
        if not self.envelope.mail_from:
            return "503 5.5.1 Error: need MAIL command"
        if not self.envelope.rcpt_tos:
            return "554 5.5.1 Error: no valid recipients"
        if self._chunks is None:
            self._chunks = bytearray()
        if self.data_size_limit and len(self._chunks) + size > self.data_size_limit:
            return "552 5.3.4 Error: message size exceeds fixed maximum message size"
        return ""

    async def smtp_DATA(self, arg: str) -> None:
        if self._chunks is not None:
            self._bdat_failed = True
            await self.push("503 5.5.1 Error: DATA after BDAT in one transaction")
            return
        if not await self._refuse_in_failed_transaction():
            await super().smtp_DATA(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not await self._refuse_in_failed_transaction():
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if self._chunks is not None:
            await self.push("503 5.5.1 Error: RCPT after BDAT")
        elif not await self._refuse_in_failed_transaction():
            await super().smtp_RCPT(arg)
