import Testing

@testable import OrchestratorCore

@Suite struct CollisionNameTests {
    @Test func suffixesGoBeforeTheExtension() {
        let name = RelativePath("sub/report.tar.gz")
        #expect(CollisionName.candidate(for: name, tag: "7", attempt: 1) == name)
        #expect(CollisionName.candidate(for: name, tag: "7", attempt: 2) == RelativePath("sub/report.tar~7.gz"))
        #expect(CollisionName.candidate(for: name, tag: "7", attempt: 3) == RelativePath("sub/report.tar~7-2.gz"))
        #expect(CollisionName.candidate(for: RelativePath("README"), tag: "7", attempt: 2) == RelativePath("README~7"))
    }

    @Test func aLongNameIsShortenedToFitKeepingItsExtension() {
        let stem = [UInt8](repeating: UInt8(ascii: "x"), count: 251)
        let name = RelativePath(stem + Array(".txt".utf8))
        #expect(name.bytes.count == 255)
        for attempt in 2...12 {
            let candidate = CollisionName.candidate(for: name, tag: "123456", attempt: attempt)
            #expect(candidate.bytes.count <= 255)
            #expect(candidate.description.hasSuffix(attempt == 2 ? "~123456.txt" : "~123456-\(attempt - 1).txt"))
        }
        #expect(CollisionName.candidate(for: name, tag: "1", attempt: 2) != CollisionName.candidate(for: name, tag: "1", attempt: 3))
    }

    @Test func multibyteCharactersAreNotCutInHalf() {
        let stem = Array(String(repeating: "é", count: 126).utf8)  // 252 bytes
        let name = RelativePath(stem + Array(".md".utf8))
        let candidate = CollisionName.candidate(for: name, tag: "42", attempt: 2)
        #expect(candidate.bytes.count <= 255)
        #expect(candidate.isValidUTF8)
        #expect(candidate.description.hasSuffix("~42.md"))
    }

    @Test func anExtensionTooLongToKeepGivesWay() {
        let name = RelativePath(Array("a.".utf8) + [UInt8](repeating: UInt8(ascii: "e"), count: 253))
        let candidate = CollisionName.candidate(for: name, tag: "9", attempt: 2)
        #expect(candidate.bytes.count <= 255)
        #expect(candidate.bytes.starts(with: Array("a~9.".utf8)))
    }
}
