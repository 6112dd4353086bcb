import Foundation

extension TestInstance {
    /// The API's base URL (`http://127.0.0.1:PORT`) as the daemon logged it once it listens (`listen` port 0
    /// takes a free one).
    func apiBase(timeout: Double = 10) throws -> String {
        var base = ""
        try waitUntil("the daemon logs the API's address", timeout: timeout) {
            guard let range = log.range(of: #"http: listening on (http://127\.0\.0\.1:[0-9]+)"#, options: .regularExpression)
            else { return false }
            base = String(log[range].dropFirst("http: listening on ".count))
            return true
        }
        return base
    }
}
