import Foundation
import Testing
import TriplineCore

@Suite struct UUIDTextTests {
    @Test func theTextIsFoundationsLowercased() {
        var ids = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                   UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
        ids += (0..<2_000).map { _ in UUID() }
        for id in ids {
            #expect(id.lowercasedText == id.uuidString.lowercased())
            #expect(UUID(text: id.lowercasedText) == id)
            #expect(UUID(text: id.uuidString) == id)
        }
    }

    @Test(arguments: [
        "", "not a uuid", "6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5", "6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f0",
        "6f0c7a3e2b1d-5c4e-9a8f-3d2e1b0c4a5f-", "6f0c7a3e_2b1d_5c4e_9a8f_3d2e1b0c4a5f", "6f0c7a3g-2b1d-5c4e-9a8f-3d2e1b0c4a5f",
        "{6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f}", "6f0c7a3e2b1d5c4e9a8f3d2e1b0c4a5f", " 6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f",
        "6F0C7A3E-2B1D-5C4E-9A8F-3D2E1B0C4A5F", "6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5é", "６f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f",
    ])
    func anyTextIsReadAsFoundationReadsIt(_ text: String) {
        #expect(UUID(text: text) == UUID(uuidString: text))
    }

    @Test func aSubstringsTextIsRead() {
        let text = "id=6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f"
        let slice = String(text.dropFirst(3))
        #expect(UUID(text: slice)?.lowercasedText == "6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f")
    }
}
