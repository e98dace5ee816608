import Autotune
import AutotuneStorePostgres
import AutotuneTesting
import Foundation
import Logging
import Testing

/// The PostgreSQL store against a real server: `AUTOTUNE_TEST_POSTGRES` (scripts/test-cluster starts one; CI
/// does). Each check makes studies of its own names, so runs do not see each other.
private let url = ProcessInfo.processInfo.environment["AUTOTUNE_TEST_POSTGRES"]
private let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

@Suite(
    .enabled(
        if: url != nil || inCI,
        "AUTOTUNE_TEST_POSTGRES is not set: run `eval \"$(scripts/test-cluster start)\"` as root first (CI does)"))
struct PostgresStudyStoreTests {
    private func withStore(_ body: (PostgresStudyStore) async throws -> Void) async throws {
        let url = try #require(url, "CI must start PostgreSQL first (scripts/test-cluster)")
        try await PostgresStudyStore.withStore(url: url, logger: Logger(label: "test")) { try await body($0) }
    }

    /// The same contract the SQLite and in-memory stores keep, shared-study checks included.
    @Test func keepsTheStoreContract() async throws {
        try await withStore { store in
            let problems = await StudyStoreConformance(store).runShared()
            #expect(problems.isEmpty, "\(problems)")
        }
    }

    @Test func aBadURLSaysWhatIsWrong() async throws {
        let error = await #expect(throws: (any Error).self) {
            try await PostgresStudyStore.withStore(url: "mysql://x@y/z", logger: Logger(label: "test")) { _ in }
        }
        #expect(
            "\(error.map { "\($0)" } ?? "")".contains("postgres://"),
            "says what a URL looks like: \(String(describing: error))")
        do {
            try await PostgresStudyStore.withStore(
                url: "postgres://autotune@127.0.0.1:1/none", connectTimeout: .seconds(2), logger: Logger(label: "test")
            ) { _ in }
            Issue.record("connected to a port nobody listens on")
        } catch {
            #expect("\(error)".contains("127.0.0.1:1"), "\(error)")
        }
    }
}
