import GatewayNet

/// The lookup interfaces' query checks, reachable from outside this module for the fuzz
/// targets (Tests/Fuzz/Sources/QueryFuzz): a request target in, the refusal out, nil when
/// the lookup would run. Nothing is read, audited or counted.
public enum LookupQueries {
    public enum Interface: CaseIterable, Sendable {
        /// `GET /v1/patients/{token}/studies`: the target's path is the token.
        case native
        case qidoStudies
        case qidoSeries
        case fhirImagingStudy
    }

    public static func refusal(_ interface: Interface, target: String) -> HTTPError? {
        var request = HTTPRequest(method: "GET", target: target)
        do throws(HTTPError) {
            switch interface {
            case .native:
                request.pathParameters["token"] = String(request.path)
                _ = try IndexRoutes.patientQuery(request, tokenKeys: nil)
            case .qidoStudies:
                _ = try QidoRoutes.studySearch(request)
            case .qidoSeries:
                _ = try QidoRoutes.parse(request, keys: QidoRoutes.seriesKeys)
            case .fhirImagingStudy:
                _ = try FHIRRoutes.searchQuery(request)
            }
            return nil
        } catch {
            return error
        }
    }
}
