import Autotune
import AutotuneTask
import Foundation
import Testing

/// Mutants of every example task file: none may crash the reader, none may take long, and every one that is
/// refused must say where (file:line:col) in a message of bounded length.
@Suite struct TaskFileFuzzTests {
    private static let examples: [URL] = {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../examples").standardizedFileURL
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".yaml") }.sorted().map { directory.appendingPathComponent($0) }
            + [directory.appendingPathComponent("benchmarks/sleep-1s.yaml")]
    }()

    /// Values that broke the reader before: huge numbers and durations, NUL, empty and odd strings.
    private static let nasty = [
        "1e16", "9223372036854775808", "-9223372036854775809", "200000000000d", "1e308", "-1", "0", "''", "\"\"",
        "\"a\\0b\"", "~", "null", "[]", "{}", "[1, [2, [3]]]", "NaN", ".inf", "-.inf", "0x10", "1_000", "true", "'{'",
        "'}'", "'{nope}'", "\"\\u00ff\\ufffd\"", String(repeating: "x", count: 5_000), "*alias", "&anchor x",
        "!!binary AA",
        "{type: int, min: -9223372036854775808, max: 9223372036854775807}", "{type: int, min: 1, max: 1000000000}",
        "{type: float, min: 1, max: 0}", "{type: categorical, values: []}", "'A;touch /tmp/x;B'",
    ]

    private struct Mutator {
        var generator: SeededGenerator

        mutating func pick<T>(_ items: [T]) -> T { items[generator.nextInt(below: items.count)] }

        /// One mutation of `text`: a line deleted, duplicated, swapped, re-indented or truncated; a value
        /// replaced by a nasty one; bytes flipped or cut.
        mutating func mutate(_ text: String) -> Data {
            var lines = text.components(separatedBy: "\n")
            let index = generator.nextInt(below: max(1, lines.count))
            switch generator.nextInt(below: 9) {
            case 0: lines.remove(at: index)
            case 1: lines.insert(lines[index], at: index)
            case 2:
                let other = generator.nextInt(below: lines.count)
                lines.swapAt(index, other)
            case 3: lines[index] = String(repeating: " ", count: generator.nextInt(below: 5)) + lines[index]
            case 4:
                if let colon = lines[index].firstIndex(of: ":") {
                    lines[index] = String(lines[index][...colon]) + " " + pick(TaskFileFuzzTests.nasty)
                }
            case 5:
                // A nasty value inside a flow mapping: `min: 1` → `min: <nasty>`.
                let line = lines[index]
                if let range = line.range(of: #": [^,{}\[\]]+"#, options: .regularExpression) {
                    lines[index] = line.replacingCharacters(in: range, with: ": " + pick(TaskFileFuzzTests.nasty))
                }
            case 6:
                let cut = generator.nextInt(below: max(1, text.utf8.count))
                return Data(text.utf8.prefix(cut))
            case 7:
                var bytes = Array(text.utf8)
                for _ in 0..<3 where !bytes.isEmpty {
                    bytes[generator.nextInt(below: bytes.count)] = pick([0, 0xFF, 0xC3, 0x80, 0x09, 0x22, 0x7B])
                }
                return Data(bytes)
            default:
                lines.insert(
                    pick(["paralel: 3", "name: '../x'", "seed: -1", "budget: {max_trials: 0}", "x: y"]), at: index)
            }
            return Data(lines.joined(separator: "\n").utf8)
        }
    }

    // A hang is what the time limit catches; how fast mutants are refused is not this test's business.
    @Test(.timeLimit(.minutes(2)), arguments: examples)
    func mutantsOfAnExampleNeverCrashHangOrFailWithoutAPlace(example: URL) async throws {
        let original = try String(contentsOf: example, encoding: .utf8)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-fuzz-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var mutator = Mutator(generator: SeededGenerator(seed: UInt64(example.lastPathComponent.utf8.count) &* 7919))
        let registry = StrategyRegistry.builtIn
        var refused = 0
        for number in 0..<150 {
            let file = directory.appendingPathComponent("mutant-\(number).yaml")
            let data = mutator.mutate(original)
            try data.write(to: file)
            do {
                let (definition, _) = try TaskFile.load(path: file.path, workingDirectory: directory) { spec, context in
                    // Plug-ins are checked by the runner's registry; here only the built-ins are known.
                    if spec.name != "plugin" { try registry.check(spec.name, context: context) }
                }
                // What loads must be usable: its strategy built and asked once, without a crash.
                if definition.strategy.name != "plugin" {
                    var strategy = try? await registry.make(
                        definition.strategy.name, context: definition.strategyContext)
                    _ = try? await strategy?.ask(2, history: StudyHistory())
                }
            } catch {
                refused += 1
                let message = error.description
                #expect(
                    message.hasPrefix("\(file.path):") && error.line != nil && error.column != nil,
                    "mutant \(number) of \(example.lastPathComponent): \(message)")
                #expect(message.count <= 600 + file.path.count, "mutant \(number): \(message.count) characters")
            }
        }
        #expect(refused > 0)
    }
}
