import Autotune
import Foundation

/// One request a benchmark sends: its messages, the lengths it was planned with, and where it belongs in a
/// conversation.
struct PlannedRequest: Sendable, Hashable {
    /// The conversation to send: for `/v1/completions` its contents joined, for `/v1/chat/completions` as
    /// messages. The last is the user's turn being asked.
    var messages: [WorkloadRow.Turn]
    /// The prompt's planned length in tokens.
    var promptTokens: Int
    /// `max_tokens`.
    var maxTokens: Int
    /// The session (conversation) and the turn in it, from 0.
    var session: Int
    var turn: Int

    /// The prompt as one text, for the completions endpoint.
    var promptText: String { messages.map(\.content).joined(separator: "\n") }
}

/// The requests of a benchmark level as a pure function of the workload, the study's seed and the level: every
/// trial of a study sends byte-identical requests, so configurations are compared on the same traffic.
///
/// Requests come in sessions: a session of a single-turn workload is one request; with `turns: K` it is K
/// requests sent one after the other, each with the previous turns as its history. A synthetic prompt is made of
/// pseudo-words and starts with a few that only its request has, so no two prompts share a cached prefix unless
/// a shared prefix is asked for. Its length in words is its length in tokens over the server's tokens per word,
/// measured before the benchmark (``LoadGenerator/calibrate(client:baseURL:)``).
struct RequestPlan: Sendable {
    let workload: Workload
    let rows: [WorkloadRow]
    let seed: UInt64
    /// Tokens per word of synthetic text on the server's tokenizer.
    let tokensPerWord: Double
    /// Rows in the order a dataset without replacement hands them out.
    private let order: [Int]

    /// A plan over `rows` (a dataset's or a trace's, already filtered; empty for synthetic prompts).
    init(workload: Workload, rows: [WorkloadRow], seed: UInt64, tokensPerWord: Double) {
        self.workload = workload
        self.rows = rows
        self.seed = seed
        self.tokensPerWord = max(tokensPerWord, 0.05)
        var generator = SeededGenerator(seed: seed ^ 0xD47A)
        var order = Array(rows.indices)
        for index in order.indices.reversed() where index > 0 {
            order.swapAt(index, generator.nextInt(below: index + 1))
        }
        self.order = order
    }

    /// How many requests a session has.
    var turnsPerSession: Int {
        if case .dataset = workload.source { return max(1, workload.turns) }
        if case .trace = workload.source { return 1 }
        return max(1, workload.turns)
    }

    /// The sessions needed for `requests` requests.
    func sessionCount(forRequests requests: Int) -> Int {
        if case .trace = workload.source { return min(requests, rows.count) }
        return (requests + turnsPerSession - 1) / turnsPerSession
    }

    /// Session `index` of the level `level`: its requests, in order.
    func session(_ index: Int, level: Int) -> [PlannedRequest] {
        var generator = SeededGenerator(seed: seed &+ UInt64(level) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
        switch workload.source {
        case .synthetic(let input, let output):
            var history: [WorkloadRow.Turn] = []
            var requests: [PlannedRequest] = []
            let prefix = sharedPrefix(&generator)
            if let prefix { history.append(WorkloadRow.Turn(role: "system", content: prefix.text)) }
            for turn in 0..<turnsPerSession {
                let tokens = input.sample(&generator, limit: workload.maxPromptTokens ?? 1 << 20)
                let answer = output.sample(&generator, limit: workload.maxOutputTokens ?? 1 << 20)
                let key = UInt64(level) << 40 | UInt64(index) << 8 | UInt64(turn)
                history.append(WorkloadRow.Turn(role: "user", content: text(tokens: tokens, key: key)))
                let historyTokens = requests.last.map { $0.promptTokens + $0.maxTokens } ?? (prefix?.tokens ?? 0)
                requests.append(
                    PlannedRequest(
                        messages: history, promptTokens: historyTokens + tokens, maxTokens: answer, session: index,
                        turn: turn))
                // The next turn carries this one's answer as history: a reply of the planned length.
                history.append(
                    WorkloadRow.Turn(role: "assistant", content: text(tokens: answer, key: key | 1 << 62)))
            }
            return requests
        case .dataset(let dataset):
            let row = rows[pick(index, replacement: dataset.replacement)]
            var requests: [PlannedRequest] = []
            var history: [WorkloadRow.Turn] = []
            if let prefix = sharedPrefix(&generator) {
                history.append(WorkloadRow.Turn(role: "system", content: prefix.text))
            }
            var turn = 0
            for (position, message) in row.turns.enumerated() {
                history.append(message)
                guard message.role == "user", turn < turnsPerSession else { continue }
                // The answer's length: the conversation's own next reply when it has one.
                let reply = row.turns[(position + 1)...].first { $0.role == "assistant" }
                let answer =
                    reply.map { max(1, Int((Double(WorkloadFiles.words($0.content)) * WorkloadFiles.tokensPerWord))) }
                    ?? row.outputTokens ?? dataset.outputTokens
                requests.append(
                    PlannedRequest(
                        messages: history, promptTokens: estimatedTokens(history),
                        maxTokens: min(answer, workload.maxOutputTokens ?? .max), session: index, turn: turn))
                turn += 1
            }
            return requests
        case .trace:
            let row = rows[index % rows.count]
            let tokens = row.promptTokens ?? 1
            let content: String
            if let blocks = row.blocks, !blocks.isEmpty {
                // Mooncake's blocks are 512 tokens: requests that share leading block ids share that prefix.
                let perBlock = max(1, Int((512 / tokensPerWord).rounded()))
                var words: [Substring] = []
                for block in blocks where words.count * 1 < Int(Double(tokens) / tokensPerWord) + 1 {
                    words += text(tokens: 512, key: 1 << 61 | UInt64(block)).split(separator: " ").prefix(perBlock)
                }
                // The rest of the request, after its shared blocks, is its own.
                let own = text(tokens: tokens, key: UInt64(index) << 8).split(separator: " ")
                let wanted = max(1, Int((Double(tokens) / tokensPerWord).rounded()))
                content = (words + own).prefix(wanted).joined(separator: " ")
            } else {
                content = text(tokens: tokens, key: UInt64(index) << 8)
            }
            return [
                PlannedRequest(
                    messages: [WorkloadRow.Turn(role: "user", content: content)], promptTokens: tokens,
                    maxTokens: row.outputTokens ?? 64, session: index, turn: 0)
            ]
        }
    }

    /// The arrival offsets (seconds from the level's start) of `count` sessions at `rate` per second; a replayed
    /// trace's own times (over its speed) whatever the rate.
    func arrivals(count: Int, rate: Double, level: Int, limit: Double = .infinity) -> [Double] {
        if case .trace(let trace) = workload.source {
            let times = rows.prefix(count).compactMap(\.timestamp)
            guard let first = times.first else { return [] }
            switch trace.timing {
            case .replay(let speed):
                return times.map { ($0 - first) / speed }.filter { $0 <= limit }
            case .shape:
                // The trace's gaps, rescaled to a mean of 1/rate: its bursts kept, its rate the level's.
                let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
                let mean = gaps.isEmpty ? 1 : max(gaps.reduce(0, +) / Double(gaps.count), 1e-9)
                var clock = 0.0
                var result = [0.0]
                for gap in gaps {
                    clock += gap / mean / rate
                    if clock > limit { break }
                    result.append(clock)
                }
                return result
            }
        }
        var generator = SeededGenerator(seed: seed ^ UInt64(level) &* 0x51ED ^ 0xA7)
        var clock = 0.0
        var result: [Double] = []
        while result.count < count {
            let gap: Double
            switch workload.arrivals {
            case .constant: gap = 1 / rate
            case .poisson: gap = -log(max(generator.nextUnit(), 1e-12)) / rate
            case .gamma(let burstiness):
                gap = generator.nextGamma(shape: burstiness) / (burstiness * rate)
            }
            clock += gap
            if clock > limit { break }
            result.append(clock)
        }
        return result
    }

    /// The row session `index` takes: a seeded draw with replacement, or the next of a seeded shuffle without.
    private func pick(_ index: Int, replacement: Bool) -> Int {
        guard replacement else { return order[index % order.count] }
        var generator = SeededGenerator(seed: seed ^ 0x5A17 &+ UInt64(index) &* 0x2545_F491_4F6C_DD1D)
        return generator.nextInt(below: rows.count)
    }

    /// One of the shared prefixes, drawn for a session; `nil` when the workload shares none.
    private func sharedPrefix(_ generator: inout SeededGenerator) -> (text: String, tokens: Int)? {
        guard let shared = workload.sharedPrefix, shared.count > 0 else { return nil }
        let which = generator.nextInt(below: shared.count)
        return (text(tokens: shared.tokens, key: 1 << 63 | UInt64(which)), shared.tokens)
    }

    /// A conversation's length in tokens, estimated from its words.
    private func estimatedTokens(_ turns: [WorkloadRow.Turn]) -> Int {
        max(1, Int((Double(turns.reduce(0) { $0 + WorkloadFiles.words($1.content) }) * tokensPerWord).rounded()))
    }

    /// Text of about `tokens` tokens, a pure function of `key`: a marker only this key has, then pseudo-words.
    func text(tokens: Int, key: UInt64) -> String {
        let count = max(1, Int((Double(tokens) / tokensPerWord).rounded()))
        var generator = SeededGenerator(seed: seed ^ key &* 0x9E37_79B9_7F4A_7C15)
        var words: [String] = []
        words.reserveCapacity(count)
        // The first words spell the key, so two prompts differ from their first token on.
        words.append("q" + String(key, radix: 36))
        while words.count < count {
            words.append(Self.vocabulary[generator.nextInt(below: Self.vocabulary.count)])
        }
        return words.prefix(count).joined(separator: " ")
    }

    /// 1,000 pronounceable pseudo-words: two or three syllables each, so a tokenizer splits them about the same
    /// way every time and calibration holds across prompts.
    static let vocabulary: [String] = {
        let onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
        let vowels = ["a", "e", "i", "o", "u"]
        var words: [String] = []
        var generator = SeededGenerator(seed: 20_261_205)
        while words.count < 1000 {
            let syllables = 2 + generator.nextInt(below: 2)
            let word = (0..<syllables).map { _ in
                onsets[generator.nextInt(below: onsets.count)] + vowels[generator.nextInt(below: vowels.count)]
            }.joined()
            if !words.contains(word) { words.append(word) }
        }
        return words
    }()

}
