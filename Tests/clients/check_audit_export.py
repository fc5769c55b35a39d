"""fhir.resources (R4B models) reads every line of `imaging-gateway audit export` as a FHIR
AuditEvent. Run by Tests/GatewayServerTests/AuditTests.swift with the export file and the
number of events expected. Exits non-zero, with the reason, on any mismatch."""
import json
import sys

from fhir.resources.R4B.auditevent import AuditEvent


def main() -> None:
    path, expected = sys.argv[1], int(sys.argv[2])
    codes = {}
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    for n, line in enumerate(lines, 1):
        event = AuditEvent.model_validate(json.loads(line))
        if event.type.system != "http://dicom.nema.org/resources/ontology/DCM":
            sys.exit(f"line {n}: type system {event.type.system}")
        if not event.agent or not event.agent[0].who.identifier.value.startswith("urn:imaging-gateway:"):
            sys.exit(f"line {n}: no certificate agent")
        codes[event.type.code] = codes.get(event.type.code, 0) + 1
    if len(lines) != expected:
        sys.exit(f"{len(lines)} AuditEvent lines, expected {expected}")
    print(json.dumps(codes, sort_keys=True))


if __name__ == "__main__":
    main()
