import Foundation
import Testing

@testable import OrchestratorDashboard

@Suite struct DashboardAssetsTests {
    static let assetsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/OrchestratorDashboard/Assets")

    @Test func theBinaryCarriesEveryAssetAsItIsInTheRepository() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.assetsFolder.path).sorted()
        #expect(names == DashboardAssets.files.keys.sorted(), "run scripts/embed-dashboard")
        for name in names {
            let text = try String(contentsOf: Self.assetsFolder.appendingPathComponent(name), encoding: .utf8)
            let trimmed = String(text.reversed().drop { $0 == "\n" }.reversed())
            #expect(DashboardAssets.files[name]?.text == trimmed, "\(name) changed: run scripts/embed-dashboard")
        }
    }

    @Test func pathsMapToTheirFilesAndNothingElse() {
        #expect(DashboardAssets.asset(forPath: "/")?.contentType == "text/html; charset=utf-8")
        #expect(DashboardAssets.asset(forPath: "/dashboard/app.js")?.contentType == "text/javascript; charset=utf-8")
        #expect(DashboardAssets.asset(forPath: "/dashboard/style.css")?.contentType == "text/css; charset=utf-8")
        #expect(DashboardAssets.asset(forPath: "/dashboard/../Package.swift") == nil)
        #expect(DashboardAssets.asset(forPath: "/dashboard/missing.js") == nil)
        #expect(DashboardAssets.asset(forPath: "/api/v1/status") == nil)
    }

    /// The page references only files the binary carries and loads nothing from another origin (the machines it
    /// runs on may have no internet).
    @Test func thePageLoadsOnlyItsOwnFiles() throws {
        let page = try #require(DashboardAssets.asset(forPath: "/")).text
        for reference in ["/dashboard/style.css", "/dashboard/app.js"] {
            #expect(page.contains("\"\(reference)\""))
            #expect(DashboardAssets.asset(forPath: reference) != nil)
        }
        for asset in DashboardAssets.files.values {
            #expect(!asset.text.contains("http://") && !asset.text.contains("https://"))
        }
    }
}
