"""CRP audit primitives, pure and I/O-free (digest §5, §6; decisions in §9).

* `keys`: per-tenant HKDF key derivation (§5.4, G9, G10).
* `chain`: the window HMAC chain (§5.5, G6-G8), the event chain (§5.6), the
  per-tenant rolling chain (G5), TRUNCATED markers (015§6.4) and verification
  (§5.7).
* `session_token`: SPEC-007 session tokens (§5.2-5.3, G11-G15, G33).
* `ids`: `crp_sess_`, `crp_cont_`, `crp_trail_`, `crp_win_` ids (§5.1, G34).

Nothing here reads a clock, a database or the network: times, stored tips and
keys are arguments, so the lead wires storage around these functions.
"""
