public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How much room the file system holding a path has left, to tell a trial that failed because its disk was full
/// from one that failed on its own.
public enum DiskSpace {
    /// Fewer free bytes than this is a full disk: a program that writes its output fails there.
    public static let fullBelow: Int64 = 1 << 20

    /// The bytes this process can still write on the file system holding `url` (or its nearest existing
    /// folder): the blocks left to this user, or to root, who may use the reserved ones; `nil` when unknown.
    public static func free(at url: URL) -> Int64? {
        var path = url
        while !FileManager.default.fileExists(atPath: path.path), path.pathComponents.count > 1 {
            path.deleteLastPathComponent()
        }
        var stats = statvfs()
        guard statvfs(path.path, &stats) == 0 else { return nil }
        let blocks = geteuid() == 0 ? stats.f_bfree : stats.f_bavail
        return Int64(blocks) * Int64(stats.f_frsize)
    }
}
