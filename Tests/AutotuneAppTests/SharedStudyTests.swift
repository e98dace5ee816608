import Autotune
import AutotuneApp
import AutotuneTesting
import Foundation
import Testing

/// Joining a shared study by its task file.
@Suite struct SharedStudyTests {
    private let yaml = """
        name: shared
        parameters:
          x: {type: int, min: 0, max: 3}
        strategy: grid
        objective: {maximize: y}
        experiment: {command: [/bin/echo, "{x}"]}
        """

    /// A study created by `run --ray …` (which keeps where its trials run) is joined by a worker given the same
    /// task file without the flag; a task file that differs otherwise is refused.
    @Test func whereTrialsRunIsNotADifferenceBetweenTaskFiles() async throws {
        try await withDirectory { directory in
            let store = InMemoryStudyStore()
            var first = try task(yaml, in: directory)
            first.definition.execution = .ray(RayExecution(address: "http://head:8265"))
            let created = try await SharedStudy.join(first, in: store, taskPath: "t.yaml")
            let joined = try await SharedStudy.join(try task(yaml, in: directory), in: store, taskPath: "t.yaml")
            #expect(joined.id == created.id)
            #expect(joined.definition.execution == first.definition.execution)
            let other = try task(yaml.replacingOccurrences(of: "max: 3", with: "max: 4"), in: directory)
            await #expect(throws: AutotuneError.self) {
                _ = try await SharedStudy.join(other, in: store, taskPath: "t.yaml")
            }
        }
    }
}
