/// The live dashboard's static files, carried in the binary: the daemon's HTTP server serves them under
/// `/` and `/dashboard/`, and the page reads everything else from the JSON API.
public enum DashboardAssets {
    public struct Asset: Sendable {
        public let contentType: String
        public let text: String
    }

    /// The file served for a request path, or nil when the dashboard has no such file.
    public static func asset(forPath path: String) -> Asset? {
        switch path {
        case "/", "/index.html", "/dashboard", "/dashboard/": return embedded["index.html"]
        default:
            guard path.hasPrefix("/dashboard/") else { return nil }
            let name = String(path.dropFirst("/dashboard/".count))
            return name == "index.html" || name.contains("/") ? nil : embedded[name]
        }
    }

    /// Every file by name, for the test that checks the embedded copies against `Assets/`.
    public static var files: [String: Asset] { embedded }
}
