"""The server side of the agent protocol (agent/PROTOCOL.md, bosun_agent.protocol).

Faces: `views` (HTTPS), `consumers` (the agent's wake-up websocket). Below them: `auth`
(signed requests), `registration`, `lifecycle` (heartbeat, facts, keys, self-deregistration),
`messages` (the per-node queue later apps put work in), `status` (Online/ConnectionLost) and
`operations` (what the dashboard asks of a node).
"""
