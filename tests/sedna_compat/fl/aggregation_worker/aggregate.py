# The aggregation worker of Sedna's examples/federated_learning/surface_defect_detection,
# unchanged.
from sedna.common.config import Context
from sedna.service.server import AggregationServer


def run_server():
    aggregation_algorithm = Context.get_parameters(
        "aggregation_algorithm", "FedAvg"
    )
    exit_round = int(Context.get_parameters(
        "exit_round", 3
    ))
    participants_count = int(Context.get_parameters(
        "participants_count", 1
    ))

    server = AggregationServer(
        aggregation=aggregation_algorithm,
        exit_round=exit_round,
        ws_size=20 * 1024 * 1024,
        participants_count=participants_count
    )
    server.start()


if __name__ == '__main__':
    run_server()
