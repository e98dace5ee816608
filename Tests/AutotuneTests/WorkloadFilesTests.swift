import Autotune
import Foundation
import Testing

/// Every dataset and trace format read from small files, and every malformed row refused with the file, the line
/// and the field.
@Suite struct WorkloadFilesTests {
    private func error(_ body: () throws -> Void) -> String {
        do {
            try body()
            Issue.record("the file was read, but should not have been")
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test func shareGPTConversationsBecomeRowsWithTheirReplyAsTheAnswerLength() throws {
        let text = """
            [
              {"id": "a", "conversations": [
                {"from": "human", "value": "What is the capital of France?"},
                {"from": "gpt", "value": "Paris is the capital of France and its largest city."},
                {"from": "human", "value": "And of Italy?"},
                {"from": "gpt", "value": "Rome."}
              ]},
              {"id": "b", "conversations": [{"from": "gpt", "value": "I start, so I am skipped."}]},
              {"id": "c", "conversations": [{"from": "system", "value": "Be brief."}, {"from": "user", "value": "Hi"}]}
            ]
            """
        let rows = try WorkloadFiles.dataset(text, format: .sharegpt, path: "chat.json")
        #expect(rows.count == 2, "a conversation that starts with the assistant has no prompt")
        #expect(rows[0].turns.map(\.role) == ["user", "assistant", "user", "assistant"])
        #expect(
            rows[0].outputTokens == Int((10 * WorkloadFiles.tokensPerWord).rounded()), "the first reply's ten words")
        #expect(rows[0].line == 2 && rows[1].line == 9)
        #expect(rows[1].turns.first?.role == "system" && rows[1].outputTokens == nil)
    }

    @Test func malformedShareGPTNamesTheConversationAndTheField() {
        #expect(
            error { _ = try WorkloadFiles.dataset("{\"a\": 1}", format: .sharegpt, path: "x.json") }
                .contains("x.json:1: expected a JSON list of conversations"))
        let badRole = """
            [
              {"conversations": [{"from": "human", "value": "hi"}]},
              {"conversations": [{"from": "robot", "value": "hi"}]}
            ]
            """
        let message = error { _ = try WorkloadFiles.dataset(badRole, format: .sharegpt, path: "x.json") }
        #expect(message.contains("x.json:3: [1].conversations[0].from: unknown role 'robot'"), "\(message)")
        let missing = error {
            _ = try WorkloadFiles.dataset("[{\"id\": 1}]", format: .sharegpt, path: "x.json")
        }
        #expect(missing.contains("x.json:1: [0].conversations: missing"), "\(missing)")
    }

    @Test func jsonlTakesPromptsOrChatsWithOptionalAnswerLengths() throws {
        let text = """
            {"prompt": "Summarise the following text.", "output_tokens": 64}

            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
            {"prompt": "Translate this.", "max_tokens": 12}
            """
        let rows = try WorkloadFiles.dataset(text, format: .jsonl, path: "r.jsonl")
        #expect(rows.map(\.line) == [1, 3, 4])
        #expect(rows.map(\.outputTokens) == [64, nil, 12])
        #expect(rows[1].turns.map(\.role) == ["system", "user"])
    }

    @Test func malformedJSONLNamesTheLineAndTheField() {
        let cases = [
            ("{\"prompt\": \"a\"}\nnot json\n", "r.jsonl:2: is not a JSON object"),
            ("{\"prompt\": \"\"}\n", "r.jsonl:1: prompt: expected non-empty text"),
            ("{\"text\": \"a\"}\n", "r.jsonl:1: needs 'prompt' (text) or 'messages' (a chat)"),
            (
                "{\"prompt\": \"a\", \"output_tokens\": 2.5}\n",
                "r.jsonl:1: output_tokens: expected a positive whole number"
            ),
            (
                "{\"prompt\": \"a\", \"output_tokens\": true}\n",
                "r.jsonl:1: output_tokens: expected a positive whole number"
            ),
            ("{\"messages\": [{\"role\": \"user\"}]}\n", "r.jsonl:1: messages[0]: expected"),
        ]
        for (text, expected) in cases {
            let message = error { _ = try WorkloadFiles.dataset(text, format: .jsonl, path: "r.jsonl") }
            #expect(message.contains(expected), "\(message)")
        }
    }

    @Test func burstGPTRowsAreReadByTheirHeaderAndFailedRequestsDropped() throws {
        let text = """
            Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
            5,ChatGPT,472,18,490,Conversation log
            0,ChatGPT,1021,254,1275,Conversation log
            7.5,GPT-4,300,0,300,Conversation log
            """
        let rows = try WorkloadFiles.trace(text, format: .burstgpt, path: "b.csv")
        #expect(rows.map(\.timestamp) == [0, 5], "sorted by time; the failed request (0 tokens out) dropped")
        #expect(rows.map(\.promptTokens) == [1021, 472] && rows.map(\.outputTokens) == [254, 18])
        let bad = error {
            _ = try WorkloadFiles.trace(
                "Timestamp,Model,Request tokens,Response tokens\n1,x,ten,5\n", format: .burstgpt, path: "b.csv")
        }
        #expect(bad.contains("b.csv:2: Request tokens: expected a number, got 'ten'"), "\(bad)")
        let header = error { _ = try WorkloadFiles.trace("time,tokens\n1,2\n", format: .burstgpt, path: "b.csv") }
        #expect(header.contains("b.csv:1: the header has no 'timestamp' column"), "\(header)")
    }

    @Test func mooncakeRowsKeepTheirPrefixBlocks() throws {
        let text = """
            {"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, 48]}
            {"timestamp": 1500, "input_length": 700, "output_length": 10, "hash_ids": [46, 99]}
            """
        let rows = try WorkloadFiles.trace(text, format: .mooncake, path: "m.jsonl")
        #expect(rows.map(\.timestamp) == [0, 1.5], "milliseconds to seconds")
        #expect(rows[1].blocks == [46, 99])
        let bad = error {
            _ = try WorkloadFiles.trace(
                "{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 1}", format: .mooncake, path: "m.jsonl")
        }
        #expect(bad.contains("m.jsonl:1: input_length: expected a whole number of at least 1"), "\(bad)")
    }

    @Test func lengthDistributionsDrawWhatTheySay() {
        var generator = SeededGenerator(seed: 9)
        func draws(_ distribution: LengthDistribution) -> [Int] {
            (0..<4000).map { _ in distribution.sample(&generator) }
        }
        #expect(Set(draws(.fixed(77))) == [77])
        let uniform = draws(.uniform(low: 100, high: 300))
        #expect(uniform.min()! >= 100 && uniform.max()! <= 300 && abs(mean(uniform) - 200) < 5)
        let normal = draws(.normal(mean: 500, sd: 50))
        #expect(abs(mean(normal) - 500) < 5)
        let lognormal = draws(.lognormal(median: 512, sigma: 0.8))
        #expect(abs(Double(lognormal.sorted()[2000]) - 512) < 40, "its median")
        #expect(abs(mean(lognormal) - LengthDistribution.lognormal(median: 512, sigma: 0.8).mean) < 40)
        let histogram = draws(.histogram(values: [10, 1000], weights: [3, 1]))
        #expect(Set(histogram) == [10, 1000] && abs(Double(histogram.filter { $0 == 10 }.count) / 4000 - 0.75) < 0.03)
    }

    private func mean(_ values: [Int]) -> Double { Double(values.reduce(0, +)) / Double(values.count) }
}
