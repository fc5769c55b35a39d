/// Who may call what. A caller's role is the ROLE part of its certificate's SAN URI
/// `urn:imaging-gateway:ROLE:ORG-CODE`; ORG-CODE is its 18-character unified social
/// credit code.
public enum Role: String, CaseIterable, Sendable {
    case hospital
    case clinic
    case reader
    case aiWorker = "ai-worker"
    case node
    case `operator`
    case tokenClient = "token-client"

    public static let uriPrefix = "urn:imaging-gateway:"

    public func uri(organization: String) -> String {
        "\(Self.uriPrefix)\(rawValue):\(organization)"
    }
}

extension Set where Element == String {
    static func roles(_ roles: Role...) -> Set<String> {
        Set(roles.map(\.rawValue))
    }
}
