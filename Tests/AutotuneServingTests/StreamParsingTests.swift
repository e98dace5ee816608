import Foundation
import Testing

@testable import AutotuneServing

@Suite struct StreamParsingTests {
    /// A multi-byte UTF-8 character split across two network chunks arrives whole: bytes are kept until the line
    /// ends, so no chunk is decoded on its own.
    @Test func aCharacterSplitAcrossChunksIsDecodedWhole() {
        let event = Array("data: {\"choices\":[{\"text\":\"héllo — 日本\"}]}\n\n".utf8)
        // Split inside "é" (2 bytes), inside "—" (3 bytes) and inside "日" (3 bytes).
        let cuts = [event.firstIndex(of: 0xC3)! + 1, event.firstIndex(of: 0xE2)! + 2, event.firstIndex(of: 0xE6)! + 1]
        var parser = ServerSentEvents()
        var payloads: [String] = []
        var start = 0
        for cut in cuts + [event.count] {
            payloads += parser.feed(event[start..<cut])
            start = cut
        }
        #expect(payloads == [#"{"choices":[{"text":"héllo — 日本"}]}"#])
    }

    @Test func linesEndWithCRLFOrLFAndOnlyDataLinesCount() {
        var parser = ServerSentEvents()
        let payloads = parser.feed(Array(": comment\r\nevent: x\r\ndata: [DONE]\r\n\r\ndata:{\"a\":1}\n".utf8))
        #expect(payloads == ["[DONE]", #"{"a":1}"#])
    }

    @Test(arguments: [
        (#"{"choices":[{"text":"a"}]}"#, StreamChunk.Kind.token),
        (#"{"choices":[{"index":0,"text": "\"quoted\""}]}"#, .token),
        (#"{"choices":[{"text":""}]}"#, .empty),
        (#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#, .empty),
        (#"{"choices":[{"delta":{"content":null}}]}"#, .empty),
        (#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#, .token),
        (#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9}}"#, .other),
        (#"{"id":"x"}"#, .other),
        ("[DONE]", .done),
    ])
    func chunksAreToldApartWithoutDecoding(payload: String, kind: StreamChunk.Kind) {
        let bytes = Array(payload.utf8)
        #expect(bytes.withUnsafeBufferPointer { StreamChunk.scan($0) } == kind)
    }
}
