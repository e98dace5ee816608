public import Foundation

/// One request's worth of a dataset or trace file: a prompt (text, a conversation, or only its length), the
/// answer's length when the file gives it, and for traces when it came and which prefix blocks it shares.
public struct WorkloadRow: Sendable, Hashable {
    /// A turn of a conversation.
    public struct Turn: Sendable, Hashable, Codable {
        /// `user` or `assistant` (`system` too).
        public var role: String
        /// What was said.
        public var content: String

        /// Creates a turn.
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// The conversation: for a single prompt, one user turn.
    public var turns: [Turn]
    /// The prompt's length in tokens, when the file gives only that (traces).
    public var promptTokens: Int?
    /// The answer's length in tokens, when the file gives it.
    public var outputTokens: Int?
    /// When the request came, in seconds from the trace's start (traces).
    public var timestamp: Double?
    /// Prefix block ids (Mooncake): requests sharing leading ids share that much of their prompt.
    public var blocks: [Int]?
    /// The file's line the row came from, for messages.
    public var line: Int

    /// Creates a row.
    public init(
        turns: [Turn], promptTokens: Int? = nil, outputTokens: Int? = nil, timestamp: Double? = nil,
        blocks: [Int]? = nil, line: Int
    ) {
        self.turns = turns
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.timestamp = timestamp
        self.blocks = blocks
        self.line = line
    }
}

/// Reads the dataset and trace files a workload names. Pure functions of the file's text: the caller reads the
/// file. Every malformed row is an ``AutotuneError`` (`invalidTask`) naming the file, the line and the field.
public enum WorkloadFiles {
    /// Tokens a word of English makes on common tokenizers, for an answer length given as text (a ShareGPT
    /// reply): the generator asks for that many tokens.
    public static let tokensPerWord = 1.3

    /// The rows of a dataset file of `format`.
    public static func dataset(_ text: String, format: Workload.Dataset.Format, path: String) throws -> [WorkloadRow] {
        switch format {
        case .sharegpt: try shareGPT(text, path: path)
        case .jsonl: try jsonl(text, path: path)
        }
    }

    /// The rows of a trace file of `format`, sorted by time.
    public static func trace(_ text: String, format: Workload.Trace.Format, path: String) throws -> [WorkloadRow] {
        let rows =
            switch format {
            case .burstgpt: try burstGPT(text, path: path)
            case .mooncake: try mooncake(text, path: path)
            }
        return rows.sorted { ($0.timestamp ?? 0, $0.line) < ($1.timestamp ?? 0, $1.line) }
    }

    /// A content hash of a file, so a study can tell its workload file changed (FNV-1a, 64 bits, and the size).
    public static func fingerprint(_ data: Data) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in data { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return String(hash, radix: 16) + "-\(data.count)"
    }

    private static func failure(_ path: String, _ line: Int, _ field: String?, _ message: String) -> AutotuneError {
        AutotuneError(.invalidTask, "\(path):\(line): \(field.map { "\($0): " } ?? "")\(message)")
    }

    /// ShareGPT's JSON: `[{"conversations": [{"from": "human", "value": "…"}, {"from": "gpt", "value": "…"}]}]`.
    /// Roles `human`/`user` are the user's, `gpt`/`assistant`/`chatgpt`/`bard` the assistant's, `system` kept;
    /// a conversation must start (after a system turn) with the user. The answer's length is the first
    /// assistant reply's, in tokens at ``tokensPerWord``.
    static func shareGPT(_ text: String, path: String) throws -> [WorkloadRow] {
        guard let data = text.data(using: .utf8),
            let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        else { throw failure(path, 1, nil, "is not JSON (ShareGPT is a JSON list of conversations)") }
        guard let list = root as? [Any] else {
            throw failure(path, 1, nil, "expected a JSON list of conversations, got \(kind(root))")
        }
        // JSONSerialization gives no positions: each conversation's line is found by its order in the text.
        let starts = conversationLines(text)
        var rows: [WorkloadRow] = []
        for (index, element) in list.enumerated() {
            let line = index < starts.count ? starts[index] : 1
            guard let object = element as? [String: Any] else {
                throw failure(path, line, "[\(index)]", "expected an object with 'conversations', got \(kind(element))")
            }
            guard let turns = object["conversations"] as? [Any] else {
                throw failure(path, line, "[\(index)].conversations", "missing, or not a list of turns")
            }
            var parsed: [WorkloadRow.Turn] = []
            for (position, turn) in turns.enumerated() {
                let field = "[\(index)].conversations[\(position)]"
                guard let turn = turn as? [String: Any], let from = turn["from"] as? String,
                    let value = turn["value"] as? String
                else { throw failure(path, line, field, "expected {\"from\": …, \"value\": \"…\"}") }
                let role: String
                switch from.lowercased() {
                case "human", "user": role = "user"
                case "gpt", "assistant", "chatgpt", "bard", "model": role = "assistant"
                case "system": role = "system"
                default: throw failure(path, line, field + ".from", "unknown role '\(from)' (human, gpt, system)")
                }
                parsed.append(WorkloadRow.Turn(role: role, content: value))
            }
            guard let first = parsed.first(where: { $0.role != "system" }), first.role == "user" else {
                // vLLM skips these too: there is no prompt to send.
                continue
            }
            guard !first.content.isEmpty else { continue }
            let reply = parsed.first { $0.role == "assistant" }.map {
                max(1, Int((Double(words($0.content)) * tokensPerWord).rounded()))
            }
            rows.append(WorkloadRow(turns: parsed, outputTokens: reply, line: line))
        }
        guard !rows.isEmpty else { throw failure(path, 1, nil, "holds no conversation that starts with a user turn") }
        return rows
    }

    /// The JSON objects of a JSON-lines file with their line numbers, blank lines skipped; a line that is not
    /// an object fails, naming it.
    private static func objects(_ text: String, path: String) throws -> [(line: Int, object: [String: Any])] {
        var objects: [(line: Int, object: [String: Any])] = []
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw failure(path, offset + 1, nil, "is not a JSON object")
            }
            objects.append((offset + 1, object))
        }
        return objects
    }

    /// One JSON object per line: `{"prompt": "…"}` or `{"messages": [{"role": "user", "content": "…"}]}`, with an
    /// optional `output_tokens` (`max_tokens` is read too). Blank lines are skipped.
    static func jsonl(_ text: String, path: String) throws -> [WorkloadRow] {
        var rows: [WorkloadRow] = []
        for (line, object) in try objects(text, path: path) {
            var turns: [WorkloadRow.Turn]
            if let prompt = object["prompt"] {
                guard let text = prompt as? String, !text.isEmpty else {
                    throw failure(path, line, "prompt", "expected non-empty text")
                }
                turns = [WorkloadRow.Turn(role: "user", content: text)]
            } else if let messages = object["messages"] {
                guard let list = messages as? [[String: Any]], !list.isEmpty else {
                    throw failure(path, line, "messages", "expected a non-empty list of {role, content}")
                }
                turns = []
                for (index, message) in list.enumerated() {
                    guard let role = message["role"] as? String, let content = message["content"] as? String else {
                        throw failure(path, line, "messages[\(index)]", "expected {\"role\": …, \"content\": \"…\"}")
                    }
                    turns.append(WorkloadRow.Turn(role: role, content: content))
                }
            } else {
                throw failure(path, line, nil, "needs 'prompt' (text) or 'messages' (a chat)")
            }
            var output: Int?
            for key in ["output_tokens", "max_tokens"] {
                guard let value = object[key] else { continue }
                guard let number = value as? NSNumber, !isBool(number),
                    number.doubleValue == number.doubleValue.rounded(),
                    number.intValue >= 1
                else { throw failure(path, line, key, "expected a positive whole number of tokens") }
                output = number.intValue
                break
            }
            rows.append(WorkloadRow(turns: turns, outputTokens: output, line: line))
        }
        guard !rows.isEmpty else { throw failure(path, 1, nil, "holds no request") }
        return rows
    }

    /// BurstGPT's CSV: a header naming `Timestamp`, `Request tokens` and `Response tokens` (other columns are
    /// ignored), then one request a row, timestamps in seconds.
    static func burstGPT(_ text: String, path: String) throws -> [WorkloadRow] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map {
            ($0.offset + 1, String($0.element).trimmingCharacters(in: CharacterSet(charactersIn: "\r ")))
        }
        lines.removeAll { $0.1.isEmpty }
        guard let header = lines.first else { throw failure(path, 1, nil, "is empty") }
        let names = header.1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        func column(_ name: String) throws -> Int {
            guard let index = names.firstIndex(of: name) else {
                throw failure(
                    path, header.0, nil,
                    "the header has no '\(name)' column (BurstGPT: Timestamp,Model,Request tokens,Response tokens,…)")
            }
            return index
        }
        let time = try column("timestamp")
        let request = try column("request tokens")
        let response = try column("response tokens")
        var rows: [WorkloadRow] = []
        for (line, text) in lines.dropFirst() {
            let cells = text.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            func number(_ index: Int, _ name: String) throws -> Double {
                guard index < cells.count, let value = Double(cells[index]), value.isFinite, value >= 0 else {
                    throw failure(
                        path, line, name, "expected a number, got '\(index < cells.count ? cells[index] : "")'")
                }
                return value
            }
            let timestamp = try number(time, "Timestamp")
            let input = Int(try number(request, "Request tokens"))
            let output = Int(try number(response, "Response tokens"))
            // BurstGPT logs failed requests with 0 response tokens: there is nothing to replay.
            guard input > 0, output > 0 else { continue }
            rows.append(
                WorkloadRow(turns: [], promptTokens: input, outputTokens: output, timestamp: timestamp, line: line))
        }
        guard !rows.isEmpty else { throw failure(path, 1, nil, "holds no request with tokens in and out") }
        return rows
    }

    /// Mooncake's JSONL: `{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, …]}`,
    /// timestamps in milliseconds.
    static func mooncake(_ text: String, path: String) throws -> [WorkloadRow] {
        var rows: [WorkloadRow] = []
        for (line, object) in try objects(text, path: path) {
            func whole(_ key: String, minimum: Int) throws -> Int {
                guard let number = object[key] as? NSNumber, !isBool(number),
                    number.doubleValue == number.doubleValue.rounded(), number.intValue >= minimum
                else { throw failure(path, line, key, "expected a whole number of at least \(minimum)") }
                return number.intValue
            }
            let timestamp = try whole("timestamp", minimum: 0)
            let input = try whole("input_length", minimum: 1)
            let output = try whole("output_length", minimum: 1)
            var blocks: [Int]?
            if let ids = object["hash_ids"] {
                guard let list = ids as? [NSNumber] else {
                    throw failure(path, line, "hash_ids", "expected a list of whole numbers")
                }
                blocks = list.map(\.intValue)
            }
            rows.append(
                WorkloadRow(
                    turns: [], promptTokens: input, outputTokens: output, timestamp: Double(timestamp) / 1000,
                    blocks: blocks, line: line))
        }
        guard !rows.isEmpty else { throw failure(path, 1, nil, "holds no request") }
        return rows
    }

    /// Whether JSONSerialization read `true` or `false` (a 0 or 1 would cast to `Bool` as well).
    private static func isBool(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }

    /// The number of whitespace-separated words.
    public static func words(_ text: String) -> Int { text.split(whereSeparator: \.isWhitespace).count }

    /// The line each top-level element of a JSON list starts on: where a `{` opens at depth one.
    private static func conversationLines(_ text: String) -> [Int] {
        var lines: [Int] = []
        var depth = 0
        var line = 1
        var inString = false
        var escaped = false
        for byte in text.utf8 {
            if byte == 0x0A { line += 1 }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == 0x5C {
                    escaped = true
                } else if byte == 0x22 {
                    inString = false
                }
                continue
            }
            switch byte {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                if depth == 1 { lines.append(line) }
                depth += 1
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
        }
        return lines
    }

    private static func kind(_ value: Any) -> String {
        switch value {
        case is [Any]: "a list"
        case is [String: Any]: "an object"
        case is String: "text"
        case is NSNumber: "a number"
        default: "something else"
        }
    }
}
