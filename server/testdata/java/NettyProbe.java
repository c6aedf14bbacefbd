// NettyProbe drives a zabkeeper ensemble with Apache ZooKeeper's Java client
// over whatever client socket -Dzookeeper.clientCnxnSocket names (the tests
// run it with ClientCnxnSocketNetty, which pipelines requests behind its
// ConnectRequest). It prints one line per step for the Go test to check and
// waits for a line on stdin after "READY": the test then stops the server the
// client is connected to, and the client must carry its session and its
// watches to another server of the ensemble.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class NettyProbe {
    static final LinkedBlockingQueue<WatchedEvent> nodeEvents = new LinkedBlockingQueue<>();
    static final LinkedBlockingQueue<Watcher.Event.KeeperState> states = new LinkedBlockingQueue<>();

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static void awaitState(Watcher.Event.KeeperState want) throws Exception {
        while (true) {
            Watcher.Event.KeeperState s = states.poll(60, TimeUnit.SECONDS);
            if (s == null) {
                throw new IllegalStateException("no " + want + " within 60 s");
            }
            if (s == want) {
                return;
            }
        }
    }

    static WatchedEvent awaitNodeEvent() throws Exception {
        WatchedEvent e = nodeEvents.poll(60, TimeUnit.SECONDS);
        if (e == null) {
            throw new IllegalStateException("no watch event within 60 s");
        }
        return e;
    }

    static String remote(ZooKeeper zk) {
        String s = zk.toString();
        int i = s.indexOf("remoteserver:");
        if (i < 0) {
            return "?";
        }
        String r = s.substring(i + "remoteserver:".length()).split(" ")[0];
        return r.substring(r.lastIndexOf(':') + 1);
    }

    public static void main(String[] args) throws Exception {
        Watcher w = event -> {
            if (event.getType() == Watcher.Event.EventType.None) {
                states.add(event.getState());
            } else {
                nodeEvents.add(event);
            }
        };
        ZooKeeper zk = new ZooKeeper(args[0], 30000, w);
        awaitState(Watcher.Event.KeeperState.SyncConnected);
        long session = zk.getSessionId();
        say("CONNECTED " + Long.toHexString(session) + " " + remote(zk));
        zk.create("/netty", "v1".getBytes(StandardCharsets.UTF_8), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        byte[] data = zk.getData("/netty", true, new Stat());
        say("GOT " + new String(data, StandardCharsets.UTF_8));
        Stat none = zk.exists("/netty/child", true);
        say("EXISTS " + (none != null));
        // A burst of async requests: the Netty socket writes them together.
        for (int i = 0; i < 50; i++) {
            zk.create("/netty-seq-", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL,
                (rc, path, ctx, name) -> { }, null);
        }
        say("CHILDREN " + zk.getChildren("/", false).size());
        say("READY");
        new BufferedReader(new InputStreamReader(System.in)).readLine();

        awaitState(Watcher.Event.KeeperState.Disconnected);
        awaitState(Watcher.Event.KeeperState.SyncConnected);
        say("RECONNECTED " + Long.toHexString(zk.getSessionId()) + " " + remote(zk));
        // The watches set on the first server were carried over by the
        // SetWatches the client wrote behind its ConnectRequest.
        zk.setData("/netty", "v2".getBytes(StandardCharsets.UTF_8), -1);
        WatchedEvent e = awaitNodeEvent();
        say("EVENT " + e.getType() + " " + e.getPath());
        zk.create("/netty/child", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        e = awaitNodeEvent();
        say("EVENT " + e.getType() + " " + e.getPath());
        say("GOT " + new String(zk.getData("/netty", false, null), StandardCharsets.UTF_8));
        zk.close();
        say("DONE");
    }
}
