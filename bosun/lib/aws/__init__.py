"""The AWS JSON 1.1 face's model-free parts: SigV4 verification, the wire format, the service
model's input validation and the registry of operations (DESIGN.md "AWS endpoint")."""
