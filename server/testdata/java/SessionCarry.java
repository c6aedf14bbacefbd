import java.util.concurrent.LinkedBlockingQueue;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

// SessionCarry keeps one session across server swaps: it connects, creates
// an ephemeral and prints SESSION <id>; then, each time it is told "check"
// on stdin, it waits until it is connected again (to whatever server now
// listens at the address) and prints CHECK <id> <ephemeral exists>.
public class SessionCarry {
    public static void main(String[] args) throws Exception {
        LinkedBlockingQueue<Watcher.Event.KeeperState> states = new LinkedBlockingQueue<>();
        ZooKeeper zk = new ZooKeeper(args[0], 30000, (WatchedEvent e) -> {
            if (e.getType() == Watcher.Event.EventType.None) {
                states.add(e.getState());
            }
        });
        while (states.take() != Watcher.Event.KeeperState.SyncConnected) {
        }
        zk.create("/carried", "v".getBytes(), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        System.out.println("SESSION " + Long.toHexString(zk.getSessionId()));
        System.out.flush();
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            if (!line.equals("check")) {
                continue;
            }
            // Wait for the reconnection (or an expiry, which ends the test).
            while (true) {
                if (zk.getState() == ZooKeeper.States.CONNECTED) {
                    try {
                        boolean there = zk.exists("/carried", false) != null;
                        System.out.println("CHECK " + Long.toHexString(zk.getSessionId()) + " " + there);
                        System.out.flush();
                        break;
                    } catch (Exception e) {
                        // not connected after all: retry
                    }
                }
                if (!zk.getState().isAlive()) {
                    System.out.println("EXPIRED");
                    System.out.flush();
                    return;
                }
                Thread.sleep(100);
            }
        }
        zk.close();
    }
}
