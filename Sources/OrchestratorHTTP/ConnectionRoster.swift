import Foundation
import NIOCore
import NIOHTTPTypes

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

/// Tells the roster when its connection opens, begins a request, has answered it and closes.
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
