import Foundation

/// The export format for a hospital's security system: one FHIR R4 AuditEvent per line
/// (NDJSON), following the DICOM/IHE ATNA mapping — type from the DCM code system,
/// agent = the certificate's SAN URI, entities = patient tokens and study UIDs.
extension AuditEvent {
    static let displays: [EventID: String] = [
        .importRecords: "Import", .query: "Query", .applicationActivity: "Application Activity",
        .securityAlert: "Security Alert",
    ]

    public func fhirAuditEvent(observer: String) -> [String: Any] {
        var resource: [String: Any] = [
            "resourceType": "AuditEvent",
            "type": ["system": "http://dicom.nema.org/resources/ontology/DCM", "code": eventID.rawValue,
                     "display": Self.displays[eventID] ?? ""],
            "action": action.rawValue,
            "recorded": time,
            "outcome": String(outcome.rawValue),
            "outcomeDesc": "\(operation) (\(count))",
            "agent": [[
                "who": ["identifier": ["system": "urn:ietf:rfc:3986", "value": actor]],
                "requestor": true,
            ] as [String: Any]],
            "source": ["observer": ["display": observer]],
        ]
        if let purposeOfUse {
            resource["purposeOfEvent"] = [["coding": [["system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                       "code": purposeOfUse]]]]
        }
        let patients: [[String: Any]] = patientTokens.map { token in
            ["what": ["identifier": ["system": "urn:imaging-gateway:patient-token", "value": token]],
             "type": ["system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"]]
        }
        let studies: [[String: Any]] = studyInstanceUIDs.map { uid in
            ["what": ["identifier": ["system": "urn:dicom:uid", "value": "urn:oid:\(uid)"]],
             "type": ["system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"]]
        }
        if !(patients + studies).isEmpty { resource["entity"] = patients + studies }
        return resource
    }
}
