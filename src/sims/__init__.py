"""Vendor simulators for tests and demos, outside Hubgate's runtime package (D60).

Each simulator is a small stateful aiohttp server that speaks one vendor's wire API, enforces
its authentication, answers its error shapes and sends its signed webhooks; tests steer it
through Python methods or through JSON routes under `/_sim/`. Nothing in `hubgate` imports this
package.
"""
