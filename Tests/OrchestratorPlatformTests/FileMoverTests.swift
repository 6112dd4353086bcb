import Foundation
import OrchestratorCore
import OrchestratorPlatform
import Testing

/// Recovery finds a moved file whose final path was never recorded by asking where the mover would have put
/// it; the answer has to match what the mover did, folders included.
@Suite struct FileMoverTests {
    let dir: String

    init() throws {
        var template = Array("/tmp/orch-mover-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        for folder in ["processing/a", "Done"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
    }

    func touch(_ relative: String) {
        #expect(FileManager.default.createFile(atPath: "\(dir)/\(relative)", contents: Data("x".utf8)))
    }

    @Test func aFileMovedUnderARenamedFolderIsWhereTheMoverWouldPutIt() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let done = PathBytes("\(dir)/Done")
        // Done/a is a file, so the folder a/ of a/b cannot be made there.
        touch("Done/a")
        touch("processing/a/b")
        let moved = try FileMover.move(PathBytes("\(dir)/processing/a/b"), into: done, as: RelativePath("a/b"), tag: "7")
        #expect(moved == RelativePath("a~7/b"))
        #expect(FileMover.possiblePlaces(of: RelativePath("a/b"), in: done, tag: "7").first == moved)
    }

    @Test func aFileMovedUnderItsOwnCollisionNameIsAmongThePlaces() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let done = PathBytes("\(dir)/Done")
        touch("Done/x.txt")
        touch("processing/x.txt")
        let moved = try #require(try FileMover.move(PathBytes("\(dir)/processing/x.txt"), into: done, as: RelativePath("x.txt"), tag: "9"))
        #expect(moved == RelativePath("x~9.txt"))
        let places = FileMover.possiblePlaces(of: RelativePath("x.txt"), in: done, tag: "9")
        #expect(places.prefix(2) == [RelativePath("x.txt"), moved])
        #expect(places.count == 20)
    }
}
