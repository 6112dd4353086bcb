import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The server's connections and what each is doing (`IdleConnections`), shared by their event loop's handlers.
final class ConnectionRoster: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: IdleConnections<ObjectIdentifier>
    private var channels: [ObjectIdentifier: any Channel] = [:]

    init(limit: Int) { idle = IdleConnections(limit: limit) }

    func opened(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let evicted: (any Channel)? = lock.withLock {
            channels[id] = channel
            return idle.opened(id, at: DispatchTime.now().uptimeNanoseconds).flatMap { channels[$0] }
        }
        evicted?.close(promise: nil)
    }

    func requestBegan(_ channel: any Channel) { lock.withLock { idle.requestBegan(ObjectIdentifier(channel)) } }

    func requestAnswered(_ channel: any Channel) {
        lock.withLock { idle.requestAnswered(ObjectIdentifier(channel), at: DispatchTime.now().uptimeNanoseconds) }
    }

    func closed(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        lock.withLock {
            idle.closed(id)
            channels[id] = nil
        }
    }
}

/// Tells the roster when its connection opens, begins a request, has answered it and closes; puts the
/// `ConnectionCloseMarker` where it can see the request's HTTP version (Hummingbird adds this handler after that).
final class ConnectionTracker: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let roster: ConnectionRoster
    private var registered = false

    init(roster: ConnectionRoster) { self.roster = roster }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { register(context.channel) }
        // Where the request still has its HTTP version (see `ConnectionCloseMarker`).
        let pipeline = context.pipeline.syncOperations
        if let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) {
            try? pipeline.addHandler(ConnectionCloseMarker(), position: .before(codec))
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        register(context.channel)
        context.fireChannelActive()
    }

    private func register(_ channel: any Channel) {
        guard !registered else { return }
        registered = true
        roster.opened(channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { roster.requestBegan(context.channel) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { roster.requestAnswered(context.channel) }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        roster.closed(context.channel)
        context.fireChannelInactive()
    }
}

/// A request that does not keep its connection alive (HTTP/1.0 without `keep-alive`, or `Connection: Close` in any
/// spelling) is said as `connection: close`: that exact value is what Hummingbird looks for to close the connection
/// once it has answered, and it sees the request only after the HTTP version is dropped. An HTTP/1.0 client waited
/// for the idle timeout (60 s) before, holding one of the server's places.
final class ConnectionCloseMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), !head.isKeepAlive else {
            context.fireChannelRead(data)
            return
        }
        head.headers.replaceOrAdd(name: "connection", value: "close")
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}
