"""One function per CloudScoot RPC, called by the thin handler in ``scootpy.sched.handler``.

Rejections raise plain exceptions whose text is the reference's; the Thrift server sends them as
TApplicationException INTERNAL_ERROR ``Internal error processing <Method>: <text>`` (spec §2.0).
"""
