import CGatewayShims
import Foundation
import XCTest

/// A socket connected to itself (a connect to a free loopback port that the kernel gave
/// as the socket's own port) counts as refused: the client never reads its own request
/// as an answer, and does not keep holding a port a server is about to listen on.
final class SelfConnectTests: XCTestCase {
    func testASocketConnectedToItselfIsReportedRefused() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, length) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        XCTAssertTrue(bound)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        XCTAssertEqual(connected, 0, "Linux lets a socket connect to its own address")
        XCTAssertEqual(gw_socket_error(fd), ECONNREFUSED)
    }
}
