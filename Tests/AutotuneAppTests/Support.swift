import Autotune
import AutotuneApp
import Foundation

/// A task file written into `directory` and loaded as a person's would be.
func task(_ yaml: String, in directory: URL, name: String = "t.yaml") throws -> LoadedTask {
    let file = directory.appendingPathComponent(name)
    try Data(yaml.utf8).write(to: file)
    return try LoadedTask.load(file.path, workingDirectory: directory)
}

/// A fresh directory, removed when `body` ends.
func withDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-app-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}
